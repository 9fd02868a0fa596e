"""Check every commit of a generated series: builds, new warnings, checkpatch.

For each commit, in order:

* an incremental build (ccache) in every configuration of the config
  matrix (``kernel-config/matrix.toml``, ``--matrix quick|full``), each in
  its own build directory;
* in each configuration, W=1 on the C files the commit touches, compiled in
  a separate W=1 build directory at the parent and at the commit: warnings
  present only after the commit are "added";
* ``scripts/checkpatch.pl --strict`` on the commit as a patch.

The first commit that does not build is named; checkpatch and W=1 still
run for every commit so that one report shows everything.

With ``--boot`` each commit's build in the profile (the matrix's first
config) is booted and its smoke set run (patchgen/smoke.py) right after
the commit is built, before the next commit's build replaces it in the
same build directory: the guest needs the build directory (modules, the
kselftests installed from it), not only the bzImage.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

from patchgen import build as kbuild
from patchgen import matrix as kmatrix
from patchgen import proc, runfile
from patchgen import tree as trees
from patchgen.errors import BuildFailure, CommandFailed, ExitCode, UserError
from patchgen.git import Git
from patchgen.kconfig import Profile, tree_symbols
from patchgen.progress import Progress
from patchgen.results import Outcome, TestResult
from patchgen.settings import Settings

_CHECKPATCH_TOTAL = re.compile(r"total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?")
_CHECKPATCH_ITEM = re.compile(r"^(ERROR|WARNING|CHECK):(?:([A-Z0-9_]+):)? ?(.*)$")


@dataclass
class BuildCheck:
    variant: str  # the matrix config's name
    ok: bool
    seconds: float
    compiled: int
    errors: list[str] = field(default_factory=list)
    warnings_added: list[str] = field(default_factory=list)  # W=1, vs the parent
    w1_files: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BuildCheck:
        return cls(runfile.text(d, "variant"), runfile.flag(d, "ok"),
                   runfile.number(d, "seconds"), runfile.integer(d, "compiled"),
                   runfile.texts(d, "errors"), runfile.texts(d, "warnings_added"),
                   runfile.texts(d, "w1_files"))


@dataclass
class CheckpatchResult:
    errors: int
    warnings: int
    checks: int
    findings: list[str]
    notes: list[str] = field(default_factory=list)  # findings shown to be harmless

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckpatchResult:
        return cls(runfile.integer(d, "errors"), runfile.integer(d, "warnings"),
                   runfile.integer(d, "checks"), runfile.texts(d, "findings"),
                   runfile.texts(d, "notes") if "notes" in d else [])


@dataclass
class BootCheck:
    """The commit's profile build booted, its smoke set run (check --boot)."""

    status: str  # "ok", "fail", "no boot", "not built" (smoke.py)
    seconds: float
    switch_default: str | None = None  # the switch's position in the guest, as booted
    tests: list[TestResult] = field(default_factory=list)
    error: str = ""  # why the guest did not come up

    @property
    def failed(self) -> list[str]:
        from patchgen import results

        return [t.label for t in results.failed(self.tests)]

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "seconds": round(self.seconds, 1),
                "switch_default": self.switch_default,
                "tests": [t.as_dict() for t in self.tests], "error": self.error,
                "failed": self.failed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BootCheck:
        """What to_json() wrote; "failed" is derived, not read."""
        return cls(runfile.text(d, "status"), runfile.number(d, "seconds"),
                   runfile.opt_text(d, "switch_default"),
                   [TestResult.from_dict(t) for t in runfile.items(d, "tests")],
                   runfile.text(d, "error"))

    def cell(self) -> str:
        """passed/run, and "+Ns" for N cases skipped (say, a check of what a
        later patch adds)."""
        if self.status not in ("ok", "fail"):
            return self.status
        skipped = sum(1 for t in self.tests if t.outcome is Outcome.SKIP)
        run = len(self.tests) - skipped
        return f"{run - len(self.failed)}/{run}" + (f" +{skipped}s" if skipped else "")


@dataclass
class PatchCheck:
    number: int
    sha: str
    subject: str
    files: list[str]
    builds: list[BuildCheck] = field(default_factory=list)
    checkpatch: CheckpatchResult | None = None
    boot: BootCheck | None = None  # check --boot

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PatchCheck:
        """What CheckReport.to_json() wrote; the per-patch totals are not read."""
        cp = d.get("checkpatch")
        boot = d.get("boot")
        return cls(runfile.integer(d, "number"), runfile.text(d, "sha"),
                   runfile.text(d, "subject"), runfile.texts(d, "files"),
                   [BuildCheck.from_dict(b) for b in runfile.items(d, "builds")],
                   CheckpatchResult.from_dict(cp) if cp is not None else None,
                   BootCheck.from_dict(boot) if boot is not None else None)

    @property
    def builds_ok(self) -> bool:
        return all(b.ok for b in self.builds) and bool(self.builds)

    @property
    def warnings_added(self) -> list[str]:
        return [f"[{b.variant}] {w}" for b in self.builds for w in b.warnings_added]

    @property
    def w1_files(self) -> list[str]:
        return sorted({f for b in self.builds for f in b.w1_files})

    @property
    def clean(self) -> bool:
        cp = self.checkpatch
        return self.builds_ok and not self.warnings_added and cp is not None and \
            cp.errors == cp.warnings == cp.checks == 0 and \
            (self.boot is None or self.boot.status == "ok")


@dataclass
class CheckReport(runfile.RunFile):
    """check.json: every patch in every config of the matrix, and checkpatch
    (version 2: and, with --boot, its smoke set)."""

    FILE = "check.json"
    SCHEMA_VERSION = 2

    tree: str
    base: str
    branch: str
    patches: list[PatchCheck]
    first_failure: int | None = None
    configs: list[str] = field(default_factory=list)  # the matrix, in order
    boot: bool = False  # --boot: every patch's profile build booted, its smoke set run

    def to_json(self) -> dict[str, Any]:
        d = {"schema_version": self.SCHEMA_VERSION, **asdict(self)}
        # Per patch, the totals over its configs (what a reader of check.json
        # looks for first).
        for pd, pc in zip(d["patches"], self.patches, strict=True):
            pd["warnings_added"] = pc.warnings_added
            pd["w1_files"] = pc.w1_files
            pd["boot"] = pc.boot.to_json() if pc.boot is not None else None
        return d

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> Self:
        return cls(runfile.text(d, "tree"), runfile.text(d, "base"), runfile.text(d, "branch"),
                   [PatchCheck.from_dict(p) for p in runfile.items(d, "patches")],
                   runfile.opt_integer(d, "first_failure"),
                   runfile.texts(d, "configs") if "configs" in d else [],
                   runfile.flag(d, "boot") if "boot" in d else False)

    @property
    def config_names(self) -> list[str]:
        """The matrix's configs; a report of before version 2 did not list them."""
        return self.configs or sorted({b.variant for p in self.patches for b in p.builds})

    @property
    def first_boot_failure(self) -> PatchCheck | None:
        """The first patch whose smoke set failed or did not boot."""
        return next((p for p in self.patches
                     if p.boot is not None and p.boot.status in ("fail", "no boot")), None)

    @property
    def exit_code(self) -> ExitCode:
        if self.first_failure is not None:
            return ExitCode.BUILD_FAILURE
        return ExitCode.OK if all(p.clean for p in self.patches) else ExitCode.TEST_FAILURE


def join_reports(parts: Sequence[tuple[Path, CheckReport]], order: Sequence[str]
                 ) -> CheckReport:
    """One check of the series from checks of it in different configs
    (check --configs A here, --configs B elsewhere): the builds of every
    patch side by side, in the matrix's ``order``.  UserError for parts
    that are not checks of the same commits, or that share a config."""
    (first_dir, first), rest = parts[0], parts[1:]
    seen = {c: first_dir for c in first.config_names}
    for d, part in rest:
        if (part.tree, part.base) != (first.tree, first.base):
            raise UserError(f"{d} is a check of {part.tree} (base {part.base[:12]}), "
                            f"{first_dir} of {first.tree} (base {first.base[:12]})")
        for c in part.config_names:
            if c in seen:
                raise UserError(f"config {c} is in both {seen[c]} and {d}",
                                hint="join checks of different configs")
            seen[c] = d
        _same_commits(first_dir, first, d, part)
    patches: dict[int, PatchCheck] = {}
    for _, part in parts:
        for p in part.patches:
            joined = patches.setdefault(p.number, PatchCheck(p.number, p.sha, p.subject,
                                                             list(p.files)))
            joined.builds += p.builds
            joined.checkpatch = joined.checkpatch or p.checkpatch
            joined.boot = joined.boot or p.boot
    rank = {c: i for i, c in enumerate(order)}
    configs = sorted(seen, key=lambda c: rank.get(c, len(rank)))
    for p in patches.values():
        p.builds.sort(key=lambda b: configs.index(b.variant) if b.variant in configs
                      else len(configs))
    failures = [part.first_failure for _, part in parts if part.first_failure is not None]
    return CheckReport(first.tree, first.base, first.branch,
                       [patches[n] for n in sorted(patches)],
                       min(failures) if failures else None, configs,
                       any(part.boot for _, part in parts))


def _same_commits(a_dir: Path, a: CheckReport, b_dir: Path, b: CheckReport) -> None:
    """The same commit at every number; the same patches, but where a part
    stopped at a patch that does not build (it checked none after it)."""
    shas = {p.number: p.sha for p in a.patches}
    for p in b.patches:
        if p.number in shas and shas[p.number] != p.sha:
            raise UserError(f"patch {p.number} is {shas[p.number][:12]} in {a_dir}, "
                            f"{p.sha[:12]} in {b_dir}: checks of different series",
                            hint="generate the series once (or with the same --date and "
                                 "author everywhere) and check that")

    a_numbers, b_numbers = _numbers(a), _numbers(b)
    if a_numbers != b_numbers and not (_stopped_within(a, b_numbers)
                                       or _stopped_within(b, a_numbers)):
        raise UserError(f"{b_dir} checked patches {_span(b_numbers)}, {a_dir} patches "
                        f"{_span(a_numbers)}",
                        hint="join checks of the same patches (the same --patches)")


def _numbers(r: CheckReport) -> set[int]:
    return {p.number for p in r.patches}


def _span(numbers: set[int]) -> str:
    return f"{min(numbers)}-{max(numbers)}" if numbers else "none"


def _stopped_within(r: CheckReport, others: set[int]) -> bool:
    """``r`` checked the patches of ``others`` up to the one that does not build."""
    stop = r.first_failure
    return stop is not None and _numbers(r) == {n for n in others if n <= stop}


# Boots a patch's build and runs its smoke set (commands/check.py makes one).
BootSmoke = Callable[[PatchCheck, kbuild.BuildResult], BootCheck]


def checkpatch_argv(src: Path) -> list[str]:
    """Run in the tree (cwd ``src``): some checks look at it, and --no-tree
    would skip them where a maintainer's run does not."""
    return ["perl", str(src / "scripts" / "checkpatch.pl"), "--strict",
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
    result = settle_file_path_changes(result, {f: maintainers(src, f) for f in added})
    header = src / "include" / "net" / "net_namespace.h"
    return settle_const_sysctl_tables(result, patch,
                                      header.read_text() if header.exists() else "")


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


_NET_SYSCTL_NON_CONST = re.compile(
    r"register_net_sysctl_sz\(\s*struct net \*\w*,\s*const char \*\w*,\s*struct ctl_table \*")
_TABLE = re.compile(r"^static struct ctl_table (\w+)\[")
_NET_REGISTERED = re.compile(r"^\+.*\bregister_net_sysctl(?:_sz)?\([^,]+,[^,]+,\s*(\w+)", re.M)
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
_CONST_TABLE = re.compile(r"^(WARNING|CHECK):CONST_STRUCT: struct ctl_table .*FILE: (\S+):(\d+):$")


def added_tables(patch: str) -> dict[tuple[str, int], str]:
    """(file, line in the new file) of each ``static struct ctl_table X[]`` the
    patch adds, and X."""
    found: dict[tuple[str, int], str] = {}
    path, line = "", 0
    for text in patch.splitlines():
        if text.startswith("+++ "):
            path = text[4:].removeprefix("b/")
        elif m := _HUNK.match(text):
            line = int(m.group(1))
        elif text.startswith("+"):
            if t := _TABLE.match(text[1:]):
                found[(path, line)] = t.group(1)
            line += 1
        elif text.startswith(" "):
            line += 1
    return found


def settle_const_sysctl_tables(result: CheckpatchResult, patch: str,
                               net_namespace_h: str) -> CheckpatchResult:
    """checkpatch (7.x) wants every struct ctl_table const.

    Where the tree's register_net_sysctl_sz() takes a non-const table (7.2
    does: every net sysctl table of that tree draws the warning), a table
    the patch adds and registers through it cannot be const: the finding
    on that table's line becomes a note.  ``net_namespace_h``: the tree's
    include/net/net_namespace.h.
    """
    if not _NET_SYSCTL_NON_CONST.search(net_namespace_h):
        return result
    tables = added_tables(patch)
    registered = set(_NET_REGISTERED.findall(patch))
    settled: dict[str, str] = {}
    for f in result.findings:
        m = _CONST_TABLE.match(f)
        name = tables.get((m.group(2), int(m.group(3)))) if m else None
        if name is not None and name in registered:
            settled[f] = name
    if not settled:
        return result
    warned = sum(1 for f in settled if f.startswith("WARNING:"))
    note = ("CONST_STRUCT: " + ", ".join(sorted(set(settled.values()))) + " cannot be const: "
            "this tree's register_net_sysctl_sz() takes a non-const struct ctl_table")
    return CheckpatchResult(result.errors, result.warnings - warned,
                            result.checks - (len(settled) - warned),
                            [f for f in result.findings if f not in settled],
                            [*result.notes, note])


def touched_c_files(git: Git, sha: str) -> list[str]:
    out = git.out("diff-tree", "--no-commit-id", "--name-only", "-r", f"{sha}^", sha)
    return [f for f in out.splitlines() if f]


# -- W=1 ---------------------------------------------------------------------------
def w1_dir(settings: Settings, tree_id: str, profile: Profile) -> Path:
    return settings.builds / tree_id / f"{profile.name}-w1"


def w1_warnings(src: Path, main_out: Path, out: Path, objects: Sequence[str], settings: Settings,
                log_path: Path, profile: Profile) -> tuple[set[str], list[str]]:
    """(warnings as "file: message" without line numbers, objects compiled)."""
    out.mkdir(parents=True, exist_ok=True)
    config = (main_out / ".config").read_bytes()
    target = out / ".config"
    if not target.exists() or target.read_bytes() != config:
        target.write_bytes(config)
    argv = kbuild.make_argv(src, out, ["olddefconfig", "prepare"], jobs=settings.jobs,
                            make_vars=profile.make_vars(), arch=profile.arch)
    proc.stream(argv, log_path=log_path, env=kbuild.build_env(settings))
    built = [o for o in objects if (main_out / o).exists()]
    if not built:
        return set(), []
    argv = kbuild.make_argv(src, out, built, jobs=settings.jobs,
                            make_vars={**profile.make_vars(), "W": "1"}, arch=profile.arch)
    offset = log_path.stat().st_size
    # Errors show up in the normal build; here only warnings count.
    with contextlib.suppress(CommandFailed):
        proc.stream(argv, log_path=log_path, env=kbuild.build_env(settings))
    diags = kbuild.parse_diagnostics(kbuild.read_log_lines(log_path, offset), src)
    return {f"{d.file}: {d.message}" for d in diags if d.kind == "warning"}, built


# -- the check ------------------------------------------------------------------------
def parse_range(text: str | None, count: int) -> set[int]:
    """"6-9", "4", "1,3,5-6" -> patch numbers; None -> all."""
    if not text:
        return set(range(1, count + 1))
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        hi = hi if dash else lo
        # "6-" is not "6": a range needs both ends; "1--3" has a negative one.
        if not (lo.isdigit() and hi.isdigit()):
            raise UserError(f"--patches takes numbers and ranges like 6-9, got {text!r}")
        a, b = int(lo), int(hi)
        if not (1 <= a <= count and 1 <= b <= count):
            raise UserError(f"--patches {text!r}: the series has {count} patches")
        if a > b:
            raise UserError(f"--patches {text!r}: the range {a}-{b} is reversed "
                            f"(did you mean {b}-{a}?)")
        out.update(range(a, b + 1))
    return out


def series_commits(tree: trees.Tree, branch: str, patches: str | None
                   ) -> tuple[str, list[str], set[int]]:
    """The branch's tip, its commits over the base, and the numbers --patches
    wants; UserError (before any work) for a branch without the series."""
    tip = trees.series_tip(tree, branch)
    shas = Git(tree.repo).log_shas(f"{tree.base}..{tip}")
    return tip, shas, parse_range(patches, len(shas))


def check_series(tree: trees.Tree, branch: str, profile: Profile, settings: Settings,
                 progress: Progress, run_dir: Path, *, w1: bool = True,
                 checkpatch: bool = True, patches: str | None = None,
                 configs: Sequence[kmatrix.MatrixConfig] | None = None,
                 boot: BootSmoke | None = None) -> CheckReport:
    """``boot``: boot each patch's build in the profile and run its smoke set
    (the profile must be among ``configs``)."""
    git = Git(tree.repo)
    tip, shas, wanted = series_commits(tree, branch, patches)
    if configs is None:
        configs = kmatrix.select(kmatrix.load(settings.kernel_config_dir), "quick")
    kmatrix.toolchains(configs)
    src = trees.worktree(tree, settings)
    if boot is not None and not any(c.profile(profile) is profile for c in configs):
        raise UserError("--boot boots the profile's build: keep the profile config "
                        f"({configs[0].name if configs else profile.name}) in --configs")
    report = CheckReport(tree.id, tree.base, branch, [], configs=[c.name for c in configs],
                         boot=boot is not None)
    dirs = series_dirs(git, tree.base, tip)
    for n, sha in enumerate(shas, 1):
        if n not in wanted:
            continue
        info = git.commit_info(sha)
        pc = PatchCheck(n, sha, info.subject, touched_c_files(git, sha))
        report.patches.append(pc)
        with progress.stage(f"check [{n}/{len(shas)}] {info.subject}"):
            trees.checkout(src, sha)
            built: kbuild.BuildResult | None = None
            if report.first_failure is None:
                built = _build_patch(pc, configs, git, src, tree, profile, settings, progress,
                                     run_dir, dirs, w1)
                if not pc.builds_ok:
                    report.first_failure = n
            if boot is not None:
                # Now, while the build directory holds this patch's build.
                pc.boot = boot(pc, built) if built is not None and pc.builds_ok \
                    else BootCheck("not built", 0.0)
            if checkpatch:
                pc.checkpatch = run_checkpatch(git, src, sha)
            _say(progress, pc)
        # After every patch: an interrupted check keeps what it showed.
        runfile.write(run_dir / CheckReport.FILE, report.to_json())
    return report


def series_dirs(git: Git, base: str, tip: str) -> tuple[str, ...]:
    """The directories holding the C files the whole series touches ("dirs" scope)."""
    out = git.out("diff", "--name-only", base, tip)
    return tuple(sorted({str(Path(f).parent) + "/" for f in out.splitlines()
                         if f.endswith(".c")}))


def _build_patch(pc: PatchCheck, configs: Sequence[kmatrix.MatrixConfig], git: Git,
                 src: Path, tree: trees.Tree, profile: Profile, settings: Settings,
                 progress: Progress, run_dir: Path, dirs: tuple[str, ...],
                 w1: bool) -> kbuild.BuildResult | None:
    """The patch (checked out at ``src``) in every config that applies, and W=1;
    its build in the profile itself, if that built."""
    built = None
    symbols = tree_symbols(src)
    for cfg in configs:
        if not cfg.applies(symbols):
            continue
        res = _build(pc, cfg, src, tree, profile, settings, progress, run_dir, dirs)
        if res is not None and cfg.profile(profile) is profile:
            built = res
        if res is not None and w1:
            _w1(pc, cfg.profile(profile), git, src, tree, settings, progress, run_dir)
            trees.checkout(src, pc.sha)
    return built


def _build(pc: PatchCheck, cfg: kmatrix.MatrixConfig, src: Path, tree: trees.Tree,
           base: Profile, settings: Settings, progress: Progress, run_dir: Path,
           dirs: tuple[str, ...]) -> kbuild.BuildResult | None:
    """The build, or None when it failed (recorded in ``pc`` either way)."""
    profile = cfg.profile(base)
    outdir = kbuild.build_dir(settings, tree.id, profile)
    targets = ("bzImage",) if cfg.scope == "full" else dirs
    req = kbuild.BuildRequest(src, outdir, profile, targets=targets)
    progress.status(f"build ({cfg.name})")
    start = time.monotonic()
    log = run_dir / f"build-{pc.number}-{cfg.name.replace('=', '_')}.log"
    try:
        res = kbuild.build(req, settings, progress, log)
    except BuildFailure as exc:
        pc.builds.append(BuildCheck(cfg.name, False, time.monotonic() - start, 0,
                                    exc.message.splitlines()[1:] or [exc.message]))
        return None
    pc.builds.append(BuildCheck(cfg.name, True, time.monotonic() - start, res.compiled))
    return res


def _w1(pc: PatchCheck, profile: Profile, git: Git, src: Path, tree: trees.Tree,
        settings: Settings, progress: Progress, run_dir: Path) -> None:
    objects = [f[:-2] + ".o" for f in pc.files if f.endswith(".c")]
    if not objects:
        return
    main_out = kbuild.build_dir(settings, tree.id, profile)
    out = w1_dir(settings, tree.id, profile)
    bc = pc.builds[-1]
    log_path = run_dir / f"w1-{pc.number}-{bc.variant.replace('=', '_')}.log"
    progress.status(f"W=1 on {len(objects)} files at the parent commit ({bc.variant})")
    trees.checkout(src, f"{pc.sha}^")
    before, _ = w1_warnings(src, main_out, out, objects, settings, log_path, profile)
    progress.status(f"W=1 on {len(objects)} files at the commit ({bc.variant})")
    trees.checkout(src, pc.sha)
    after, built = w1_warnings(src, main_out, out, objects, settings, log_path, profile)
    bc.w1_files = built
    bc.warnings_added = sorted(after - before)


def _say(progress: Progress, pc: PatchCheck) -> None:
    builds = ", ".join(f"{b.variant} {'ok' if b.ok else 'FAILED'} {b.seconds:.0f}s"
                       f"{f' (+{len(b.warnings_added)} W=1)' if b.warnings_added else ''}"
                       for b in pc.builds) or "not built (an earlier patch failed)"
    cp = pc.checkpatch
    cps = f"checkpatch {cp.errors} errors, {cp.warnings} warnings, {cp.checks} checks" \
        if cp else "checkpatch skipped"
    progress.info(f"build: {builds}; W=1: {len(pc.warnings_added)} new warnings "
                  f"({len(pc.w1_files)} files); {cps}")
    if pc.boot is not None:
        progress.info(f"boot: {pc.boot.status} {pc.boot.cell()} in {pc.boot.seconds:.0f}s"
                      + (f", switch default {pc.boot.switch_default}"
                         if pc.boot.switch_default else "")
                      + (f"; failed: {', '.join(pc.boot.failed)}" if pc.boot.failed else "")
                      + (f"; {pc.boot.error}" if pc.boot.error else ""))
    for b in pc.builds:
        for e in b.errors[:5]:
            progress.info(f"  [{b.variant}] {e}")
    for w in pc.warnings_added[:5]:
        progress.info(f"  new warning: {w}")
    for f in (cp.findings if cp else [])[:8]:
        progress.info(f"  {f}")


def cell(pc: PatchCheck, config: str) -> str:
    """One patch in one config: ok, FAIL, +N (new W=1 warnings), - (not built)."""
    b = next((x for x in pc.builds if x.variant == config), None)
    if b is None:
        return "-"
    if not b.ok:
        return "FAIL"
    return f"+{len(b.warnings_added)}" if b.warnings_added else "ok"


def format_report(report: CheckReport) -> str:
    """The patch x config table, then checkpatch, then what failed."""
    configs = report.config_names
    lines = [f"check of {report.branch} on {report.tree} (base {report.base[:12]}):", "",
             "  build per config: ok, FAIL, +N = N new W=1 warnings, - = not built "
             "(the config's options are not in the tree yet, or an earlier patch failed)", ""]
    if report.boot:
        lines[-1:-1] = ["  boot: the profile build booted, its smoke set run (quick selftests at "
                        "the default switch position, and the runtime checks once the "
                        "generator is in): passed/run (+Ns: N skipped), no boot, not built"]
    widths = [max(len(c), 4) for c in configs]
    head = "  ".join(f"{c:<{w}}" for c, w in zip(configs, widths, strict=True))
    if report.boot:
        head += f"  {'boot':<9}"
    lines.append(f"  {'#':>2}  {head}  {'checkpatch e/w/c':<16}  subject")
    for p in report.patches:
        row = "  ".join(f"{cell(p, c):<{w}}" for c, w in zip(configs, widths, strict=True))
        if report.boot:
            row += f"  {p.boot.cell() if p.boot else '-':<9}"
        cp = p.checkpatch
        cps = f"{cp.errors}/{cp.warnings}/{cp.checks}" if cp else "-"
        lines.append(f"  {p.number:>2}  {row}  {cps:<16}  {p.subject}")
    lines.append("")
    lines += _boot_lines(report)
    if report.first_failure is not None:
        # --patches may have checked a part of the series: find it by number.
        p = next(x for x in report.patches if x.number == report.first_failure)
        lines.append(f"  first patch that does not build: {p.number} {p.subject}")
        for b in p.builds:
            lines += [f"    [{b.variant}] {e}" for e in b.errors[:10]]
    else:
        lines.append("  every patch builds in every config")
    warned = [(p, w) for p in report.patches for w in p.warnings_added]
    if warned:
        lines.append("")
        lines.append("  new W=1 warnings:")
        lines += [f"    {p.number}: {w}" for p, w in warned[:20]]
    return "\n".join(lines)


def _boot_lines(report: CheckReport) -> list[str]:
    """check --boot: the first patch whose smoke set fails, and every failure."""
    if not report.boot:
        return []
    first = report.first_boot_failure
    if first is None or first.boot is None:
        return ["  every patch built boots and passes its smoke set"]
    failed = ", ".join(first.boot.failed) or first.boot.error
    out = [f"  first patch whose smoke set fails: {first.number} {first.subject} ({failed})"]
    for p in report.patches:
        if p.boot is not None and p.boot.status == "no boot":
            out.append(f"    {p.number}: no boot: {p.boot.error}")
        elif p.boot is not None and p.boot.failed:
            out.append(f"    {p.number}: failed: {', '.join(p.boot.failed)}")
    return out
