"""The stages several commands share: tree, build, kselftest install,
accelerator, guest, the run directory, and the series (plan, commit, switch).

Each stage takes what earlier stages returned and returns a typed result;
the commands (patchgen/commands/) string them together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchgen import build as kbuild
from patchgen import kconfig, kselftest, outputs, proc
from patchgen import tree as trees
from patchgen.errors import BuildFailure, UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.results import Outcome, TestResult
from patchgen.settings import Settings
from patchgen.vm import accel as vmaccel
from patchgen.vm.argv import GuestSpec
from patchgen.vm.bootstages import boot_stages_note
from patchgen.vm.guest import Guest, boot_with_one_retry, free_port

if TYPE_CHECKING:
    from patchgen.series.context import Runtime
    from patchgen.series.generate import Committed, SeriesPlan


def new_run_dir(settings: Settings, kind: str, output: Path | None) -> Path:
    """A directory for this run; an --output directory is linked from runs/ too.

    Later commands (prep quotes the newest check and test reports) look
    for earlier runs under runs/, wherever their output went.
    """
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    settings.runs.mkdir(parents=True, exist_ok=True)
    if output is not None:
        run_dir = outputs.check(output, kind)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = _fresh(settings.runs, f"{stamp}-{kind}")
    with contextlib.suppress(OSError):
        if output is not None:
            (settings.runs / f"{stamp}-{kind}").symlink_to(run_dir)
        latest = settings.runs / "latest"
        latest.unlink(missing_ok=True)
        latest.symlink_to(run_dir if output else Path(run_dir.name))
    return run_dir



ACCELS = ("auto", "kvm", "tcg")


# Less does not boot the guest's userspace and run the tests.
MIN_GUEST_MEMORY = 256 << 20


def check_guest_options(memory: str, cpus: int, accel: str) -> None:
    """The guest's size and accelerator as given, before any work (QEMU
    would refuse an impossible size only after the build)."""
    if not re.fullmatch(r"[1-9][0-9]*[KMGT]?", memory):
        raise UserError(f"--memory must be a size like 2G or 512M, got {memory!r}")
    size, total = size_bytes(memory), host_memory()
    if size < MIN_GUEST_MEMORY:
        raise UserError(f"--memory {memory}: a guest needs 256M or more")
    if total and size > total:
        raise UserError(f"--memory {memory}: more than this host has ({total >> 20}M)")
    if cpus < 1:
        raise UserError(f"--cpus must be 1 or more, got {cpus}")
    host_cpus = os.cpu_count() or 1
    if cpus > 4 * host_cpus:
        raise UserError(f"--cpus {cpus}: more than 4 per host CPU ({host_cpus} here)")
    if accel not in ACCELS:
        raise UserError(f"--accel must be {', '.join(ACCELS[:-1])} or {ACCELS[-1]}, "
                        f"got {accel!r}")


def size_bytes(size: str) -> int:
    """--memory ("2G", "512M", a number of bytes) in bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if size[-1] in units:
        return int(size[:-1]) * units[size[-1]]
    return int(size)


def host_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's memory in bytes (MemTotal; 0 if unknown)."""
    try:
        m = re.search(r"^MemTotal:\s+(\d+) kB", meminfo.read_text(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) * 1024 if m else 0


def require_guest_tools() -> None:
    """vng and QEMU, checked before a build that would be for nothing without them."""
    for tool in ("vng", "qemu-system-x86_64"):
        proc.require(tool)


def _fresh(parent: Path, name: str) -> Path:
    """``parent/name``, or name-2, -3, ...: two runs started in one second
    (shards sharing a cache) each get their own."""
    for n in itertools.count(1):
        path = parent / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def stage_tree(req: trees.TreeRequest, settings: Settings, progress: Progress) -> trees.Tree:
    with progress.stage("tree"):
        tree = trees.prepare(req, settings, progress)
        progress.info(f"{tree.id}: {tree.origin}, base {tree.base[:12]}")
    return tree


def stage_build(tree: trees.Tree, rev: str, profile: kconfig.Profile, settings: Settings,
                progress: Progress, run_dir: Path) -> kbuild.BuildResult:
    if re.search(r"[\s:]", str(settings.cache)):
        # kbuild: "main directory cannot contain spaces nor colons".
        raise UserError(f"the cache {settings.cache} has a space or colon in its path, where "
                        "the kernel cannot be built", hint="give --cache a path without them")
    with progress.stage(f"build ({profile.name})"):
        src = trees.worktree(tree, settings)
        trees.checkout(src, rev)
        req = kbuild.BuildRequest(src, kbuild.build_dir(settings, tree.id, profile), profile)
        result = kbuild.build(req, settings, progress, run_dir / "build.log")
        if not result.skipped:
            progress.info(f"{result.compiled} objects compiled, image {result.image}")
    return result


def stage_selftests_install(tree: trees.Tree, built: kbuild.BuildResult, settings: Settings,
                            progress: Progress, run_dir: Path) -> kselftest.Installed:
    with progress.stage("kselftest build"):
        src = trees.worktree(tree, settings)
        return kselftest.install(src, built.outdir, tree.facts, settings, progress,
                                 run_dir / "kselftest-install.log")


def stage_accel(requested: str, built: kbuild.BuildResult, settings: Settings,
                progress: Progress) -> vmaccel.AccelDecision:
    with progress.stage("accelerator"):
        decision = vmaccel.decide(requested, built.image, settings.cache, progress)
        progress.info(f"{decision.accel.value}: {decision.reason}")
    return decision


def guest_spec(built: kbuild.BuildResult, decision: vmaccel.AccelDecision, settings: Settings,
               memory: str, cpus: int, append: tuple[str, ...] = (),
               icount: bool = False) -> GuestSpec:
    """The guest every stage boots: this build's kernel, patchgen's guest init, a free port."""
    return GuestSpec(built.image, decision.accel, free_port(),
                     settings.selftests_dir / "guest" / "patchgen-guest-init.sh",
                     memory, cpus, append, build_dir=built.outdir, icount=icount)


def guest_ssh_keys(settings: Settings) -> Path:
    """Where guests' SSH keys are kept between boots (vm/sshkeys.py)."""
    return settings.cache / "guest-ssh"


# What a guest is like right after boot, before any test changes it: the
# position the runtime switch defaults to there, and why (the kernel's
# Spectre v2 mitigation: the default is 1 where retpolines are in use).
BOOT_FACTS = {
    "spectre_v2": "/sys/devices/system/cpu/vulnerabilities/spectre_v2",
}


def boot_facts(guest: Guest, runtime: Runtime) -> dict[str, str]:
    """BOOT_FACTS and the switch, read in the guest (absent files are left out)."""
    out: dict[str, str] = {}
    facts = {"switch_default": runtime.switch_file, **BOOT_FACTS}
    for key, path in facts.items():
        res = guest.run(["cat", path], timeout=30)
        if res.returncode == 0:
            out[key] = res.stdout.strip()
    return out



def trees_rev(tree: trees.Tree, rev: str | None) -> str:
    if rev is None:
        return tree.base
    from patchgen.git import Git

    return Git(tree.repo).rev_parse(rev)



# -- the series -------------------------------------------------------------------
def switch_positions(switch: str) -> list[str]:
    """--switch: "auto" (what the tree has: []), or positions of the switch, "1,0"."""
    if switch == "auto":
        return []
    positions = [p.strip() for p in switch.split(",")]
    if not switch or any(p not in ("0", "1") for p in positions) or \
            len(set(positions)) != len(positions):
        raise UserError(f"--switch takes 0, 1 or both (1,0), got {switch!r}")
    return positions


def series_runtime(settings: Settings) -> Runtime:
    """The switch, the generator and the guest checks of the series (series.toml)."""
    from patchgen.series import generate

    return generate.load_spec(settings.templates_dir).runtime


def has_generator(tree: trees.Tree, rev: str, runtime: Runtime) -> bool:
    """Whether ``rev`` has the generator, hence the switch and the runtime checks."""
    return generator_source(tree, rev, runtime) is not None


def generator_source(tree: trees.Tree, rev: str, runtime: Runtime) -> str | None:
    """The generator file at ``rev``; None if the commit has none."""
    from patchgen.git import Git

    res = Git(tree.repo).run("show", f"{rev}:{runtime.generator}", check=False)
    return res.stdout if res.returncode == 0 else None


def unmet_needs(needs: Mapping[str, str], source: str | None) -> dict[str, str]:
    """The cases of series.toml [runtime.needs] whose feature the generator
    ``source`` (None: no generator) does not have yet: case -> what it needs."""
    return {case: text for case, text in needs.items() if source is None or text not in source}


def say_unmet(progress: Progress, results: Iterable[TestResult],
              unmet: Mapping[str, str]) -> None:
    """After the live lines (which gave the raw outcome): which cases count as
    skipped because they test what a later patch adds."""
    for r in results:
        if r.name in unmet and r.outcome is Outcome.SKIP:
            progress.info(f"{r.label}: counted as skipped: {r.attempts[-1].detail}")


def switch_variants(tree: trees.Tree, rev: str, switch: str, runtime: Runtime
                    ) -> tuple[kselftest.Variant, ...]:
    """Which positions of the runtime switch to test at ``rev``.

    "auto": both (programs, then nf_hook_slow()) once the generator is in
    the tree, nothing to switch before that.
    """
    has_switch = has_generator(tree, rev, runtime)
    if switch == "auto":
        positions = ["1", "0"] if has_switch else []
    else:
        positions = switch_positions(switch)
        if positions and not has_switch:
            raise UserError(f"{rev[:12]} has no {runtime.generator}: there is no switch to set")
    if not positions:
        return (kselftest.NO_VARIANT,)
    return tuple(kselftest.Variant(f"{runtime.switch_name}={p}", {runtime.switch: p})
                 for p in positions)


# -- the guest and what runs in it -------------------------------------------------
def guest_factory(built: kbuild.BuildResult, decision: vmaccel.AccelDecision,
                  settings: Settings, run_dir: Path, boots: list[dict[str, Any]],
                  runtime: Runtime, *, memory: str = "2G",
                  cpus: int = 2) -> kselftest.GuestFactory:
    """Boots of this build for the lanes, each recorded in ``boots`` (time to
    SSH, BOOT_FACTS): boot-<n> in a serial run, boot-<lane>-<n> with several
    guests at once, each with its own console log."""
    counters: dict[int, Iterator[int]] = {}

    @contextlib.contextmanager
    def boot(lane: kselftest.Lane) -> Iterator[Guest]:
        n = next(counters.setdefault(lane.number, itertools.count(1)))
        name = f"boot-{n}" if lane.number == 0 else f"boot-{lane.number}-{n}"
        tried: list[int] = []

        def guest_for(attempt: int) -> Guest:
            tried.append(attempt)
            spec = guest_spec(built, decision, settings, memory, cpus)
            where = run_dir / (name if attempt == 1 else f"{name}-attempt-{attempt}")
            return Guest(spec, where, lane.progress, ssh_keys=guest_ssh_keys(settings),
                         cancel=lane.cancel)

        with contextlib.ExitStack() as stack:
            guest = boot_with_one_retry(stack, guest_for, lane.progress)
            lane.progress.info(f"{'boot' if lane.number else 'guest'} {n} up: SSH after "
                               f"{guest.boot_seconds:.1f}s (console {guest.console_log})"
                               f"{boot_stages_note(guest.boot_stages)}")
            record: dict[str, Any] = {"boot": n,
                                      "seconds_to_ssh": round(guest.boot_seconds, 2),
                                      "attempts": len(tried), **boot_facts(guest, runtime)}
            if lane.number:
                record["lane"] = lane.number
            if guest.boot_stages is not None:
                record["stages"] = guest.boot_stages.record()
            boots.append(record)
            try:
                yield guest
            finally:
                guest.shutdown()
                record["peak_rss_kb"] = guest.peak_rss_kb

    return boot


def script_names(runtime: Runtime) -> tuple[str, str]:
    """The names guest_scripts() gives our two scripts (and their results, with ":case")."""
    return runtime.checks, f"selftest/{runtime.selftest}"


# How our scripts report a case: ``result NAME ok|fail|skip`` (both define result()).
_CASE_RESULT = re.compile(r"\bresult\s+([A-Za-z0-9_]+)\s+(?:ok|fail|skip)\b")


def script_cases(settings: Settings, runtime: Runtime) -> dict[str, tuple[str, ...]]:
    """Each of our scripts (by script_names()) and the cases it reports, in order."""
    checks, selftest = script_names(runtime)
    files = {checks: settings.selftests_dir / "guest" / checks,
             selftest: settings.templates_dir / "selftest" / runtime.selftest}
    return {name: tuple(dict.fromkeys(_CASE_RESULT.findall(path.read_text())))
            for name, path in files.items()}


def guest_scripts(settings: Settings, runtime: Runtime, generator: bool,
                  churn: int = 200, run_dir: Path | None = None,
                  module: Path | None = None) -> tuple[kselftest.ScriptPlan, ...]:
    """Our runtime checks of the generated programs, when the tree has them
    (``generator``): patchgen's own (given ``module``, build_checks_module()'s
    .ko), and the series' selftest (templates/selftest, the files its last
    patch adds), run from the templates so that a branch without that
    patch, or an older series, is checked the same way."""
    if not generator:
        return ()
    checks, selftest = script_names(runtime)
    script = settings.selftests_dir / "guest" / checks
    env = {"CHURN": str(churn)}
    if module is not None:
        env[runtime.checks_module_env] = str(module)
    plans = [kselftest.ScriptPlan(script, 1800 + 3 * churn, env)]
    if run_dir is not None:
        source = settings.templates_dir / "selftest"
        helper = build_guest_helper(source / f"{runtime.helper}.c", run_dir)
        plans.append(kselftest.ScriptPlan(source / runtime.selftest, 900,
                                          {runtime.helper_env: str(helper)},
                                          label=selftest))
    return tuple(plans)


def build_checks_module(tree: trees.Tree, built: kbuild.BuildResult, runtime: Runtime,
                        settings: Settings, progress: Progress, run_dir: Path) -> Path | None:
    """The guest checks' module (series.toml [runtime] checks_module), built
    against ``built`` from the worktree it was built from; None when the
    series names none."""
    if not runtime.checks_module:
        return None
    progress.status(f"building module {runtime.checks_module} for the guest checks")
    try:
        return kbuild.build_module(settings.selftests_dir / "guest" / "module",
                                   runtime.checks_module, trees.worktree(tree, settings),
                                   built.outdir, settings, run_dir, "checks-module")
    except BuildFailure as exc:
        # Not the kernel's failure: the case that loads it fails (insmod
        # finds nothing there), the rest of the run goes on.
        progress.warn(f"{exc.message} ({exc.hint}): the guest checks that load it fail")
        return run_dir / "checks-module" / f"{runtime.checks_module}.ko"


def build_guest_helper(source: Path, run_dir: Path) -> Path:
    """Compile a selftest's C helper on the host (the guest shares its files)."""
    out = run_dir / source.stem
    proc.require("gcc")
    proc.run(["gcc", "-O2", "-Wall", "-o", str(out), str(source)], timeout=300)
    return out


def plan_series(tree: trees.Tree, author: str | None, settings: Settings, progress: Progress,
                upto: int | None = None, fault: str | None = None, *,
                local_ok: bool = False) -> SeriesPlan:
    """Compute the series from the tree (nothing is written).

    ``local_ok``: without a usable git identity, sign off as
    generate.LOCAL_RUN (a test run, or a plan) instead of failing.
    """
    from patchgen.series import generate
    from patchgen.series.render import Renderer

    spec = generate.load_spec(settings.templates_dir)
    identity = generate.identity_for(tree, author, local_ok=local_ok)
    if identity == generate.LOCAL_RUN:
        progress.warn(f"no usable git identity: this run signs the series off as {identity}; "
                      "'patchgen generate' and 'prep' need yours (git config --global "
                      "user.email/user.name, or --author)")
    with progress.stage(f"generate: compute {upto or len(spec.patches)} patches from the tree"):
        series = generate.plan(tree, Renderer(settings.templates_dir), spec, identity, upto,
                               fault)
        for p in series.patches:
            for w in p.warnings:
                progress.warn(w)
    return series


def check_branch(tree: trees.Tree, branch: str, default: str, fault: str | None = None) -> None:
    """Before the series is computed: ``branch`` can take it without touching
    anything of the user's (a branch checked out somewhere would change
    under its working tree)."""
    from patchgen.git import Git
    from patchgen.series import generate

    git = Git(tree.repo)
    problem = git.branch_name_problem(branch)
    if problem is not None:
        raise UserError(f"--branch {branch}: {problem}")
    where = git.checked_out().get(branch)
    if where is not None:
        raise UserError(f"--branch {branch} is checked out in {where}; patchgen never moves "
                        "a branch under a working tree",
                        hint=f"name another branch, or check out another one in {where}")
    tip = git.run("rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}",
                  check=False).stdout.strip()
    # A Debian tree's repository is patchgen's own (it lives in the cache,
    # and CI restores it with branches older patchgen wrote without a
    # reflog message): only a user's --tree holds anyone's work.
    foreign = tree.users and tip and \
        tip not in git.reflog_shas(f"refs/heads/{branch}", generate.WRITTEN)
    if foreign:
        raise UserError(f"--branch {branch} holds commits patchgen did not write "
                        f"({tip[:12]} {git.commit_info(tip).subject})",
                        hint=f"name another branch, or delete this one first if nothing on "
                             f"it is to be kept (git branch -D {branch})")
    if fault is not None and branch == default:
        raise UserError(f"--inject-fault {fault} makes a deliberately broken series; it would "
                        f"replace the series on {default}",
                        hint="give it a branch of its own: --branch patchgen/fault-" + fault)


def commit_series(series: SeriesPlan, branch: str | None, date: str | None,
                  settings: Settings, progress: Progress) -> Committed:
    from patchgen.git import git_date
    from patchgen.series import generate

    branch = branch or series.spec.branch
    # Without --date a rerun keeps the branch when only "now" differs.
    chosen = date is not None
    date = git_date(date) if date is not None else \
        dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S%z")
    with progress.stage(f"generate: commit to branch {branch}"), \
            tree_lock(settings, series.tree.id, progress):
        done = generate.commit(series, branch, date, keep_dates=chosen)
        state = "unchanged (same patches as before)" if done.reused else "updated"
        progress.info(f"branch {branch} {state}: {len(done.commits)} commits on "
                      f"{series.tree.base[:12]}")
    return done

