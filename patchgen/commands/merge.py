"""patchgen merge: the runs of ``test --shard i/N`` back into one run.

Each shard's report.json says which shard it is, the units it ran and all
units of the run (patchgen/shard.py).  The shards must be of one run (same
tree, commit, kernel config, command but for --shard, same units) and all
N must be there, once each; the merged report has their results in the
order a serial run gives them, and the exit code ``test`` would give.

Check runs join too: the config matrix built in parts (``check --configs
A`` on one machine, ``--configs B`` on another) becomes one check.json
and patch x config table, with the exit code ``check`` would give.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchgen import check, matrix, results, runfile, stages
from patchgen.check import CheckReport
from patchgen.commands.test import TestOutcome
from patchgen.errors import ExitCode, InfraError, UserError
from patchgen.progress import Progress, StageTiming
from patchgen.report import Report, save_run, summary
from patchgen.settings import Settings
from patchgen.shard import ShardInfo, result_key

SAME_RUN = ("tree", "rev", "config_digest", "accel")  # metadata every shard must share
# Worst last: a shard that broke off outweighs test failures.
SEVERITY = (ExitCode.OK, ExitCode.TEST_FAILURE, ExitCode.BUILD_FAILURE, ExitCode.INFRA_FAILURE,
            ExitCode.USER_ERROR, ExitCode.INTERRUPTED)


@dataclass(frozen=True)
class MergeRequest:
    run_dirs: tuple[Path, ...]
    output: Path | None = None

    def __post_init__(self) -> None:
        if not self.run_dirs:
            raise UserError("no run directories to merge")


@dataclass(frozen=True)
class JoinedCheck:
    """Check runs of different configs, joined: check.json and check.txt."""

    report: CheckReport
    text: str
    run_dir: Path


def run(req: MergeRequest, settings: Settings, progress: Progress) -> TestOutcome | JoinedCheck:
    """Test shards, or check runs of parts of the config matrix; everything
    is read and checked before the output directory is made."""
    checks = [(d / CheckReport.FILE).exists() and not (d / Report.FILE).exists()
              for d in req.run_dirs]
    if any(checks):
        if not all(checks):
            raise UserError("a check run and a test run cannot be merged",
                            hint="merge the shards of one test run, or check runs of "
                                 "one series in different configs")
        return join_checks(req, settings, progress)
    shards = [(d, Report.load(d / Report.FILE)) for d in req.run_dirs]
    try:
        merged = merge_reports(shards)
    except runfile.MALFORMED as exc:
        # Read as the right shape, wrong inside (a command that does not
        # parse, boots that are not a list): the files are bad input.
        raise runfile.RunFileError(
            f"{', '.join(str(d / Report.FILE) for d in req.run_dirs)}: malformed run "
            f"file: {exc}") from None
    code = exit_code(merged)
    merged.metadata["exit_code"] = int(code)
    run_dir = stages.new_run_dir(settings, "merge", req.output)
    progress.info(f"run directory: {run_dir}")
    text = summary(merged, stages.series_runtime(settings).switch_name)
    # report.json last (save_run): what reads the run takes it as finished.
    (run_dir / "summary.txt").write_text(text + "\n")
    save_run(merged, run_dir)
    return TestOutcome(merged, run_dir, code, text)


def join_checks(req: MergeRequest, settings: Settings, progress: Progress) -> JoinedCheck:
    """check --configs A, --configs B, ... of one series: one patch x config table."""
    parts = [(d, CheckReport.load(d / CheckReport.FILE)) for d in req.run_dirs]
    order = [c.name for c in matrix.load(settings.kernel_config_dir)]
    report = check.join_reports(parts, order)
    run_dir = stages.new_run_dir(settings, "merge", req.output)
    progress.info(f"run directory: {run_dir}")
    text = check.format_report(report)
    (run_dir / "check.txt").write_text(text + "\n")
    runfile.write(run_dir / CheckReport.FILE, report.to_json())
    return JoinedCheck(report, text, run_dir)


def merge_reports(shards: Sequence[tuple[Path, Report]]) -> Report:
    """One report of the shards' results, in the serial order; UserError for
    shards of different runs, InfraError for a shard that is missing."""
    if not shards:
        raise UserError("no run directories to merge")
    infos = [_info(d, r) for d, r in shards]
    first_dir, first = shards[0]
    for (d, r), info in zip(shards[1:], infos[1:], strict=True):
        _same_run(first_dir, first, infos[0], d, r, info)
    _complete(shards, infos)
    order = sorted(range(len(shards)), key=lambda k: infos[k].shard.index)
    keys = infos[0].all_keys
    tests = [t for k in order for t in shards[k][1].tests]
    try:
        tests.sort(key=lambda t: keys.index(result_key(t, keys)))
    except ValueError as exc:
        raise UserError(f"cannot merge: {exc}") from None
    merged = Report(command=_serial_command(first.command),
                    started=min(r.started for _, r in shards),
                    metadata={k: v for k, v in first.metadata.items() if k != "exit_code"},
                    build=dict(first.build), tests=tests, expectations=first.expectations)
    merged.metadata["merged"] = [_record(*shards[k], infos[k]) for k in order]
    merged.stages = [StageTiming(f"{s.name} [{infos[k].shard}]", s.seconds, s.ok)
                     for k in order for s in shards[k][1].stages]
    merged.guest = {**first.guest,
                    "boots": [{**b, "shard": str(infos[k].shard)} for k in order
                              for b in shards[k][1].guest.get("boots", [])]}
    errors = [f"shard {infos[k].shard}: {shards[k][1].error}" for k in order
              if shards[k][1].error]
    errors += _unrun(shards, infos, order)
    merged.error = "; ".join(errors) or None
    return merged


def exit_code(merged: Report) -> ExitCode:
    """What ``test`` would exit with for these results; a shard that broke off wins."""
    codes = [_code(m.get("exit_code")) for m in merged.metadata.get("merged", [])]
    codes = [c for c in codes if c not in (ExitCode.OK, ExitCode.TEST_FAILURE)]
    if merged.error and not codes:
        codes.append(ExitCode.INFRA_FAILURE)
    codes.append(ExitCode.TEST_FAILURE if results.failed(merged.tests) else ExitCode.OK)
    return max(codes, key=SEVERITY.index)


def _code(value: Any) -> ExitCode:
    try:
        return ExitCode(value)
    except ValueError:
        return ExitCode.INFRA_FAILURE


def _info(run_dir: Path, report: Report) -> ShardInfo:
    if report.shard is None:
        raise UserError(f"{run_dir}: not a shard's run (no --shard)",
                        hint="merge the run directories of 'patchgen test --shard i/N'")
    return report.shard


def _same_run(a_dir: Path, a: Report, a_info: ShardInfo, b_dir: Path, b: Report,
              b_info: ShardInfo) -> None:
    if a_info.shard.count != b_info.shard.count:
        raise UserError(f"{b_dir} is shard {b_info.shard}, but {a_dir} is shard "
                        f"{a_info.shard}: not one split")
    pairs = [(k, a.metadata.get(k), b.metadata.get(k)) for k in SAME_RUN]
    pairs += [("command", _serial_command(a.command), _serial_command(b.command)),
              ("units", ", ".join(a_info.all_keys), ", ".join(b_info.all_keys))]
    for what, va, vb in pairs:
        if va != vb:
            raise UserError(f"{b_dir} is not a shard of the same run: {what} {va} ≠ {vb} "
                            f"(in {a_dir})")


def _complete(shards: Sequence[tuple[Path, Report]], infos: Sequence[ShardInfo]) -> None:
    seen: dict[int, Path] = {}
    for (d, _), info in zip(shards, infos, strict=True):
        if info.shard.index in seen:
            raise UserError(f"shard {info.shard} given twice: {seen[info.shard.index]}, {d}")
        seen[info.shard.index] = d
    n = infos[0].shard.count
    missing = [i for i in range(1, n + 1) if i not in seen]
    if missing:
        have = ", ".join(f"{i}/{n}" for i in sorted(seen))
        raise InfraError(", ".join(f"shard {i}/{n}" for i in missing)
                         + (" is" if len(missing) == 1 else " are") + f" missing (have {have})",
                         hint="a shard's job did not finish or its run directory was not "
                              "passed; run it again with --shard")
    covered = Counter(k for info in infos for k in info.keys)
    twice = sorted(k for k, n in covered.items() if n > 1)
    if twice:
        raise UserError(f"the shards' units overlap: {', '.join(twice)} in more than one shard")
    odd = sorted(set(covered) ^ set(infos[0].all_keys))
    if odd:
        raise UserError(f"the shards' units do not add up to the run's: {', '.join(odd)}")
    for d, report in shards:
        results: set[tuple[str, str]] = set()
        for t in report.tests:
            if (t.name, t.variant) in results:
                raise runfile.RunFileError(f"{d / Report.FILE}: malformed run file: "
                                           f"{t.label} given twice")
            results.add((t.name, t.variant))


def _unrun(shards: Sequence[tuple[Path, Report]], infos: Sequence[ShardInfo],
           order: Sequence[int]) -> list[str]:
    out = []
    for k in order:
        keys = infos[k].all_keys
        ran = {result_key(t, keys) for t in shards[k][1].tests}
        left = [key for key in infos[k].keys if key not in ran]
        if left:
            out.append(f"shard {infos[k].shard} has no results for {', '.join(left)}")
    return out


def _record(run_dir: Path, report: Report, info: ShardInfo) -> dict[str, Any]:
    code = report.metadata.get("exit_code")
    # None: the shard broke off before it wrote one (read as infrastructure).
    if code is not None and (type(code) is not int or code not in set(ExitCode)):
        raise runfile.RunFileError(f"{run_dir / Report.FILE}: malformed run file: "
                                   f"exit_code {code!r} is no exit code of patchgen")
    return {"shard": str(info.shard), "run_dir": str(run_dir), "started": report.started,
            "exit_code": code}


def _serial_command(command: str) -> str:
    """The shard's command without its --shard: the run all shards are part of."""
    argv = shlex.split(command)
    if "--shard" in argv:
        i = argv.index("--shard")
        del argv[i:i + 2]
    return shlex.join(argv)
