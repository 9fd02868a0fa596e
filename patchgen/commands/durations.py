"""patchgen durations: refresh selftests/durations/<series>.toml from real runs.

``--shard`` deals a run's units to shards by these durations; a file
seeded from the quick set leaves the default set's longer tests at the
default guess and the shards uneven.  This reads the report.json of test
runs (or merged shard runs) of one tree series and one accelerator and
writes each unit's mean over them; units the runs did not have keep their
earlier value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from patchgen import runfile, shard
from patchgen.errors import UserError
from patchgen.progress import Progress
from patchgen.report import Report
from patchgen.settings import Settings
from patchgen.vm.accel import Accel


@dataclass(frozen=True)
class DurationsRequest:
    run_dirs: tuple[Path, ...]
    dry_run: bool = False  # print what would change, write nothing
    output: Path | None = None  # None: the series' file in selftests/durations

    def __post_init__(self) -> None:
        if not self.run_dirs:
            raise UserError("no run directories given")


@dataclass(frozen=True)
class DurationsOutcome:
    path: Path
    written: bool
    changes: tuple[tuple[str, float | None, float], ...]  # unit, before, after


def run(req: DurationsRequest, settings: Settings, progress: Progress) -> DurationsOutcome:
    reports = [(d, Report.load(d / Report.FILE)) for d in req.run_dirs]
    _each_run_once(reports)
    series = _one_series(reports)
    path = req.output or settings.durations_file(series)
    if path.is_dir():
        raise UserError(f"--output {path}: a directory; name the durations file")
    try:
        old = path.read_text() if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if old is not None:
        shard.read_durations(old, str(path))  # a broken file: said before anything else
    runs = [measured(d, r) for d, r in reports]
    text = shard.durations_text(old, runs)
    accel = runs[0].accel
    before = shard.load_durations(path, accel).seconds if old is not None else {}
    after = shard.Durations(None, _table(text, accel)).seconds
    changes = tuple((k, before.get(k), v) for k, v in after.items() if before.get(k) != v)
    if not req.dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        runfile.write_text(path, text)
        progress.info(f"wrote {path}: {len(changes)} of {len(after)} units changed")
    return DurationsOutcome(path, not req.dry_run, changes)


def _each_run_once(reports: list[tuple[Path, Report]]) -> None:
    """A run given twice, or a merged run beside a shard it merged, would
    count the same seconds twice in every unit's mean."""
    seen: dict[Path, Path] = {}
    for d, _ in reports:
        where = d.resolve()
        if where in seen:
            raise UserError(f"{seen[where]}: given twice", hint="give each run once")
        seen[where] = d
    for d, report in reports:
        merged = report.metadata.get("merged")
        for record in merged if isinstance(merged, list) else []:
            if not isinstance(record, dict) or not record.get("run_dir"):
                continue
            shard_dir = Path(str(record["run_dir"])).resolve()
            if shard_dir in seen and shard_dir != d.resolve():
                raise UserError(f"{seen[shard_dir]}: a shard of {d}, which merged it",
                                hint="give the merged run or its shards, not both")


def measured(run_dir: Path, report: Report) -> shard.Measured:
    """A run's seconds per unit; the units from its shard record when it has one."""
    if not report.tests:
        raise UserError(f"{run_dir}: the run has no test results")
    md = report.metadata
    keys = report.shard.all_keys if report.shard is not None else None
    try:
        seconds = shard.measured(report.tests, keys, switched=bool(md.get("variants")))
    except ValueError as exc:
        raise UserError(f"{run_dir}: {exc}") from None
    return shard.Measured(run_dir.name, report.command, str(md.get("tree", "?")),
                          str(md.get("rev", "?")), report.started, str(md.get("accel", "?")),
                          seconds)


def _one_series(reports: Sequence[tuple[Path, Report]]) -> str:
    seen: dict[tuple[str, str], Path] = {}
    for d, r in reports:
        if not r.metadata.get("accel"):
            raise UserError(f"{d}: the report names no accelerator")
        if r.metadata["accel"] not in {a.value for a in Accel}:
            raise UserError(f"{d}: accelerator {r.metadata['accel']!r} is none patchgen uses")
        m = re.match(r"([0-9]+\.[0-9]+)", str(r.metadata.get("version", "")))
        if m is None:
            raise UserError(f"{d}: the report names no kernel version")
        seen.setdefault((m.group(1), str(r.metadata.get("accel"))), d)
    if len(seen) > 1:
        raise UserError("runs of one kernel series and one accelerator only: "
                        + ", ".join(f"{s} ({a}) in {d}" for (s, a), d in seen.items()))
    ((series, _),) = seen
    return series


def _table(text: str, accel: str) -> dict[str, float]:
    import tomllib

    return {k: float(v) for k, v in tomllib.loads(text).get(accel, {}).items()}


def format_changes(outcome: DurationsOutcome) -> str:
    if not outcome.changes:
        return f"{outcome.path}: no unit changed"
    width = max(len(k) for k, _, _ in outcome.changes)
    lines = [f"{'unit':<{width}}  {'before':>8}  {'after':>8}"]
    for key, before, after in outcome.changes:
        was = "-" if before is None else f"{before:.2f}"
        lines.append(f"{key:<{width}}  {was:>8}  {after:>8.2f}")
    verb = "written to" if outcome.written else "would be written to (--dry-run)"
    lines.append(f"{len(outcome.changes)} units {verb} {outcome.path}")
    return "\n".join(lines)
