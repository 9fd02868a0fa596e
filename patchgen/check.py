"""Check every commit of a generated series: builds, new warnings, checkpatch.

For each commit, in order:

* an incremental build (ccache) in the profile's build directory, in every
  config variant that commit offers (``NF_HOOK_BPF=y`` and ``=n`` once the
  option exists);
* W=1 on the C files the commit touches, compiled in a separate W=1 build
  directory at the parent and at the commit: warnings present only after
  the commit are "added";
* ``scripts/checkpatch.pl --strict`` on the commit as a patch.

The first commit that does not build is named; checkpatch and W=1 still
run for every commit so that one report shows everything.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patchgen import build as kbuild
from patchgen import proc
from patchgen import tree as trees
from patchgen.errors import BuildFailure, CommandFailed, ExitCode, UserError
from patchgen.git import Git
from patchgen.kconfig import KconfigEntry, Profile, tree_symbols
from patchgen.progress import Progress
from patchgen.settings import Settings

_CHECKPATCH_TOTAL = re.compile(r"total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?")
_CHECKPATCH_ITEM = re.compile(r"^(ERROR|WARNING|CHECK):(?:([A-Z0-9_]+):)? ?(.*)$")
VARIANT_SYMBOL = "NF_HOOK_BPF"


@dataclass(frozen=True)
class Variant:
    name: str  # "default", "nf_hook_bpf=n"
    profile: Profile


@dataclass
class BuildCheck:
    variant: str
    ok: bool
    seconds: float
    compiled: int
    errors: list[str] = field(default_factory=list)


@dataclass
class CheckpatchResult:
    errors: int
    warnings: int
    checks: int
    findings: list[str]
    notes: list[str] = field(default_factory=list)  # findings shown to be harmless


@dataclass
class PatchCheck:
    number: int
    sha: str
    subject: str
    files: list[str]
    builds: list[BuildCheck] = field(default_factory=list)
    warnings_added: list[str] = field(default_factory=list)
    w1_files: list[str] = field(default_factory=list)
    checkpatch: CheckpatchResult | None = None

    @property
    def builds_ok(self) -> bool:
        return all(b.ok for b in self.builds) and bool(self.builds)

    @property
    def clean(self) -> bool:
        cp = self.checkpatch
        return self.builds_ok and not self.warnings_added and cp is not None and cp.errors == 0


@dataclass
class CheckReport:
    tree: str
    base: str
    branch: str
    patches: list[PatchCheck]
    first_failure: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def exit_code(self) -> ExitCode:
        if self.first_failure is not None:
            return ExitCode.BUILD_FAILURE
        return ExitCode.OK if all(p.clean for p in self.patches) else ExitCode.TEST_FAILURE


def variants(base: Profile, symbols: set[str]) -> list[Variant]:
    """The configs a commit is built in: with and without the option once it exists.

    A profile that already asks for the option is the "=y" build itself, so
    that build keeps using (and incrementally updating) its directory.
    """
    if VARIANT_SYMBOL not in symbols:
        return [Variant("default", base)]
    name = VARIANT_SYMBOL.lower()
    on = base if base.requested().get(VARIANT_SYMBOL) == "y" else \
        base.with_extra(f"{name}_y", [KconfigEntry(VARIANT_SYMBOL, "y")])
    return [Variant(f"{name}=y", on),
            Variant(f"{name}=n", base.with_extra(f"{name}_n", [KconfigEntry(VARIANT_SYMBOL, "n")]))]


def checkpatch_argv(src: Path) -> list[str]:
    return ["perl", str(src / "scripts" / "checkpatch.pl"), "--strict", "--no-tree",
            "--show-types", "--color=never", "-"]


def parse_checkpatch(output: str) -> CheckpatchResult:
    m = _CHECKPATCH_TOTAL.search(output)
    errors, warnings, checks = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)) \
        if m else (0, 0, 0)
    findings = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        item = _CHECKPATCH_ITEM.match(line)
        if item:
            where = lines[i + 1].strip() if i + 1 < len(lines) else ""
            kind = f"{item.group(1)}:{item.group(2)}" if item.group(2) else item.group(1)
            findings.append(f"{kind}: {item.group(3)} {where}".strip())
    if m is None and "has no obvious style problems" not in output:
        findings.append("checkpatch printed no summary: " + " | ".join(lines[-3:]))
        errors += 1
    return CheckpatchResult(errors, warnings, checks, findings)


def run_checkpatch(git: Git, src: Path, sha: str) -> CheckpatchResult:
    patch = git.run("format-patch", "-1", "--stdout", sha).stdout
    res = proc.run(checkpatch_argv(src), input=patch, cwd=src, check=False, timeout=600)
    result = parse_checkpatch(res.stdout + res.stderr)
    added = git.out("diff-tree", "--no-commit-id", "--name-only", "-r", "--diff-filter=A",
                    f"{sha}^", sha).split()
    return settle_file_path_changes(result, {f: maintainers(src, f) for f in added})


def maintainers(src: Path, path: str) -> list[str]:
    """get_maintainer.pl's people for a file (run in a checkout that has it)."""
    argv = ["perl", str(src / "scripts" / "get_maintainer.pl"), "--no-git", "--no-git-fallback",
            "--no-rolestats", "--no-l", "--no-r", "-f", path]
    res = proc.run(argv, cwd=src, check=False, timeout=120)
    return [line.strip() for line in res.stdout.splitlines() if "@" in line]


def settle_file_path_changes(result: CheckpatchResult,
                             owners: dict[str, list[str]]) -> CheckpatchResult:
    """checkpatch asks whether MAINTAINERS needs updating for new files.

    When get_maintainer.pl already names maintainers for every new file,
    the answer is no: the finding becomes a note and does not count.
    """
    kind = "WARNING:FILE_PATH_CHANGES"
    hits = [f for f in result.findings if f.startswith(kind)]
    if not hits or not owners or not all(owners.values()):
        return result
    note = (f"{kind}: new files already covered by MAINTAINERS: "
            + "; ".join(f"{f} ({owners[f][0]})" for f in sorted(owners)))
    return CheckpatchResult(result.errors, result.warnings - len(hits), result.checks,
                            [f for f in result.findings if not f.startswith(kind)],
                            [*result.notes, note])


def touched_c_files(git: Git, sha: str) -> list[str]:
    out = git.out("diff-tree", "--no-commit-id", "--name-only", "-r", f"{sha}^", sha)
    return [f for f in out.splitlines() if f]


# -- W=1 ---------------------------------------------------------------------------
def w1_dir(settings: Settings, tree_id: str, profile: Profile) -> Path:
    return settings.builds / tree_id / f"{profile.name}-w1"


def w1_warnings(src: Path, main_out: Path, out: Path, objects: Sequence[str], settings: Settings,
                log_path: Path) -> tuple[set[str], list[str]]:
    """(warnings as "file: message" without line numbers, objects compiled)."""
    out.mkdir(parents=True, exist_ok=True)
    config = (main_out / ".config").read_bytes()
    target = out / ".config"
    if not target.exists() or target.read_bytes() != config:
        target.write_bytes(config)
    argv = kbuild.make_argv(src, out, ["olddefconfig", "prepare"], jobs=settings.jobs)
    proc.stream(argv, log_path=log_path, env=kbuild.build_env(settings))
    built = [o for o in objects if (main_out / o).exists()]
    if not built:
        return set(), []
    argv = kbuild.make_argv(src, out, built, jobs=settings.jobs, make_vars={"W": "1"})
    offset = log_path.stat().st_size
    # Errors show up in the normal build; here only warnings count.
    with contextlib.suppress(CommandFailed):
        proc.stream(argv, log_path=log_path, env=kbuild.build_env(settings))
    diags = kbuild.parse_diagnostics(kbuild.read_log_lines(log_path, offset), src)
    return {f"{d.file}: {d.message}" for d in diags if d.kind == "warning"}, built


# -- the check ------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckRequest:
    tree: trees.TreeRequest
    branch: str
    profile: str = "selftests"
    w1: bool = True
    checkpatch: bool = True
    output: Path | None = None


def parse_range(text: str | None, count: int) -> set[int]:
    """"6-9", "4", "1,3,5-6" -> patch numbers; None -> all."""
    if not text:
        return set(range(1, count + 1))
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError as exc:
            raise UserError(f"--patches takes numbers and ranges like 6-9, got {text!r}") from exc
        if not 1 <= a <= b <= count:
            raise UserError(f"--patches {text!r}: the series has {count} patches")
        out.update(range(a, b + 1))
    return out


def check_series(tree: trees.Tree, branch: str, profile: Profile, settings: Settings,
                 progress: Progress, run_dir: Path, *, w1: bool = True,
                 checkpatch: bool = True, patches: str | None = None) -> CheckReport:
    git = Git(tree.repo)
    tip = git.rev_parse(branch)
    shas = git.log_shas(f"{tree.base}..{tip}")
    if not shas:
        raise BuildFailure(f"branch {branch} has no commits on top of {tree.base[:12]}",
                           hint="run patchgen generate first")
    src = trees.worktree(tree, settings)
    report = CheckReport(tree.id, tree.base, branch, [])
    wanted = parse_range(patches, len(shas))
    for n, sha in enumerate(shas, 1):
        if n not in wanted:
            continue
        info = git.commit_info(sha)
        pc = PatchCheck(n, sha, info.subject, touched_c_files(git, sha))
        report.patches.append(pc)
        with progress.stage(f"check [{n}/{len(shas)}] {info.subject}"):
            trees.checkout(src, sha)
            if report.first_failure is None:
                _builds(pc, src, tree, profile, settings, progress, run_dir)
                if not pc.builds_ok:
                    report.first_failure = n
            if w1 and pc.builds_ok:
                _w1(pc, git, src, tree, profile, settings, progress, run_dir)
            if checkpatch:
                pc.checkpatch = run_checkpatch(git, src, sha)
            _say(progress, pc)
    (run_dir / "check.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report


def _builds(pc: PatchCheck, src: Path, tree: trees.Tree, profile: Profile, settings: Settings,
            progress: Progress, run_dir: Path) -> None:
    symbols = tree_symbols(src / "net" / "netfilter")
    for v in variants(profile, symbols):
        outdir = kbuild.build_dir(settings, tree.id, v.profile)
        req = kbuild.BuildRequest(src, outdir, v.profile)
        start = time.monotonic()
        try:
            res = kbuild.build(req, settings, progress, run_dir / f"build-{pc.number}.log")
            pc.builds.append(BuildCheck(v.name, True, time.monotonic() - start, res.compiled))
        except BuildFailure as exc:
            pc.builds.append(BuildCheck(v.name, False, time.monotonic() - start, 0,
                                        exc.message.splitlines()[1:]))
            return


def _w1(pc: PatchCheck, git: Git, src: Path, tree: trees.Tree, profile: Profile,
        settings: Settings, progress: Progress, run_dir: Path) -> None:
    objects = [f[:-2] + ".o" for f in pc.files if f.endswith(".c")]
    if not objects:
        return
    main_out = kbuild.build_dir(settings, tree.id, profile)
    out = w1_dir(settings, tree.id, profile)
    log_path = run_dir / f"w1-{pc.number}.log"
    progress.status(f"W=1 on {len(objects)} files at the parent commit")
    trees.checkout(src, f"{pc.sha}^")
    before, _ = w1_warnings(src, main_out, out, objects, settings, log_path)
    progress.status(f"W=1 on {len(objects)} files at the commit")
    trees.checkout(src, pc.sha)
    after, built = w1_warnings(src, main_out, out, objects, settings, log_path)
    pc.w1_files = built
    pc.warnings_added = sorted(after - before)


def _say(progress: Progress, pc: PatchCheck) -> None:
    builds = ", ".join(f"{b.variant} {'ok' if b.ok else 'FAILED'} {b.seconds:.0f}s"
                       for b in pc.builds) or "not built (an earlier patch failed)"
    cp = pc.checkpatch
    cps = f"checkpatch {cp.errors} errors, {cp.warnings} warnings, {cp.checks} checks" \
        if cp else "checkpatch skipped"
    progress.info(f"build: {builds}; W=1: {len(pc.warnings_added)} new warnings "
                  f"({len(pc.w1_files)} files); {cps}")
    for b in pc.builds:
        for e in b.errors[:5]:
            progress.info(f"  {e}")
    for w in pc.warnings_added[:5]:
        progress.info(f"  new warning: {w}")
    for f in (cp.findings if cp else [])[:8]:
        progress.info(f"  {f}")


def format_report(report: CheckReport) -> str:
    lines = [f"check of {report.branch} on {report.tree} (base {report.base[:12]}):", ""]
    builds = [", ".join(f"{b.variant}:{'ok' if b.ok else 'FAIL'}" for b in p.builds) or "-"
              for p in report.patches]
    width = max([len("build"), *map(len, builds)])
    lines.append(f"  {'#':>2}  {'build':<{width}} {'W=1 new':>7}  {'checkpatch e/w/c':<16}  "
                 "subject")
    for p, build in zip(report.patches, builds, strict=True):
        cp = p.checkpatch
        cps = f"{cp.errors}/{cp.warnings}/{cp.checks}" if cp else "-"
        lines.append(f"  {p.number:>2}  {build:<{width}} {len(p.warnings_added):>7}  {cps:<16}  "
                     f"{p.subject}")
    lines.append("")
    if report.first_failure is not None:
        # --patches may have checked a part of the series: find it by number.
        p = next(x for x in report.patches if x.number == report.first_failure)
        lines.append(f"  first patch that does not build: {p.number} {p.subject}")
        for b in p.builds:
            lines += [f"    {e}" for e in b.errors[:10]]
    else:
        lines.append("  every patch builds")
    return "\n".join(lines)
