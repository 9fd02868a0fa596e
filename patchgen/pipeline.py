"""tree -> config -> build -> boot -> test -> report, as small typed stages.

Each stage is a function that takes what earlier stages returned and returns
a typed result; ``run_tests`` strings them together and always writes the
report, also when a stage fails or the user presses Ctrl-C.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import re
import resource
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchgen import bench, equiv, kconfig, kselftest, proc, results, stages
from patchgen import build as kbuild
from patchgen import tree as trees
from patchgen.errors import ExitCode, GuestFailure, PatchgenError, UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.report import Report, summary, tool_versions, write_json, write_junit
from patchgen.settings import Settings
from patchgen.vm import accel as vmaccel
from patchgen.vm.argv import qemu_opts
from patchgen.vm.guest import CommandResult, Guest, boot_with_one_retry

if TYPE_CHECKING:
    from patchgen.series.generate import Runtime


ACCELS = ("auto", "kvm", "tcg")


def check_test_request(req: TestRequest, settings: Settings) -> None:
    """What needs more than the request: the profile exists, the test names are
    the tree's.  Cheap, and done before any tree, build or guest work."""
    kconfig.get_profile(settings.kernel_config_dir, req.profile)
    catalogue = kselftest.load_catalogue(settings.selftests_dir / "kselftests.toml")
    kselftest.check_selection(catalogue, known_tests(req.tree, settings, catalogue), req.tests)


def known_tests(req: trees.TreeRequest, settings: Settings,
                catalogue: kselftest.Catalogue) -> list[str] | None:
    """The tree's selftests as far as they can be known without any work.

    Your tree, or a Debian tree already in the cache: its selftests
    Makefile.  A Debian tree not unpacked yet: the tests patchgen has
    recorded for that series (selftests/expected, kselftests.toml).
    """
    if req.path is not None:
        return kselftest.tree_tests(req.path.expanduser())
    series = req.version if req.version is not None else trees.default_series()
    cached = settings.trees / f"debian-{series}"
    if (cached / trees.STAMP).exists():
        return kselftest.tree_tests(cached)
    expect = settings.selftests_dir / "expected" / f"{series}.toml"
    recorded = list(results.load_expectations(expect, "tcg").outcomes) if expect.exists() else []
    names = recorded + [n for n in catalogue.tests if n not in recorded]
    return names or None


@dataclass(frozen=True)
class TestRequest:
    tree: trees.TreeRequest
    profile: str = "selftests"
    rev: str | None = None  # None: the tree's base commit
    tests: str = "default"
    retries: int = 1
    accel: str = "auto"
    output: Path | None = None
    memory: str = "2G"
    cpus: int = 2
    switch: str = "auto"  # positions of net.netfilter.nf_hook_bpf to test: "1,0", "1", ...
    command: str = "test"  # how the user asked: "test", or "run" (generate first)
    equiv: bool = True  # the equivalence cases (selftests/equiv)
    churn: int = 200  # hook register/unregister cycles in nf_hook_bpf.sh

    def __post_init__(self) -> None:
        """Every field that can be judged alone; check_test_request() does the rest."""
        stages.switch_positions(self.switch)
        if not self.tests.strip(" ,"):
            raise UserError("--tests is empty", hint="quick, default, all, or test names")
        for name, value, least in (("--retries", self.retries, 0), ("--cpus", self.cpus, 1),
                                   ("--churn", self.churn, 0)):
            if value < least:
                raise UserError(f"{name} must be {least} or more, got {value}")
        if not re.fullmatch(r"[1-9][0-9]*[KMGT]?", self.memory):
            raise UserError(f"--memory must be a size like 2G or 512M, got {self.memory!r}")
        if self.accel not in ACCELS:
            raise UserError(f"--accel must be {', '.join(ACCELS[:-1])} or {ACCELS[-1]}, "
                            f"got {self.accel!r}")

    def reproducer(self) -> str:
        argv = ["patchgen", self.command]
        if self.tree.path is not None:
            argv += ["--tree", str(self.tree.path)]
        else:
            argv += ["--version", self.tree.version or trees.default_series()]
        argv += ["--profile", self.profile, "--tests", self.tests,
                 "--retries", str(self.retries), "--accel", self.accel]
        if self.rev and self.command == "test":
            argv += ["--rev", self.rev]
        if self.switch != "auto":
            argv += ["--switch", self.switch]
        if not self.equiv:
            argv.append("--no-equiv")
        if self.churn != 200:
            argv += ["--churn", str(self.churn)]
        return shlex.join(argv)


@dataclass(frozen=True)
class Outcome:
    report: Report
    run_dir: Path
    exit_code: ExitCode
    summary: str  # as written to summary.txt


# -- stages ----------------------------------------------------------------------


def guest_factory(built: kbuild.BuildResult, decision: vmaccel.AccelDecision, req: TestRequest,
                  settings: Settings, progress: Progress, run_dir: Path,
                  boots: list[dict[str, Any]], runtime: Runtime) -> kselftest.GuestFactory:
    counter = itertools.count(1)

    @contextlib.contextmanager
    def boot() -> Iterator[Guest]:
        n = next(counter)
        tried: list[int] = []

        def guest_for(attempt: int) -> Guest:
            tried.append(attempt)
            spec = stages.guest_spec(built, decision, settings, req.memory, req.cpus)
            where = run_dir / (f"boot-{n}" if attempt == 1 else f"boot-{n}-attempt-{attempt}")
            return Guest(spec, where, progress)

        with contextlib.ExitStack() as stack:
            guest = boot_with_one_retry(stack, guest_for, progress)
            progress.info(f"guest {n} up: SSH after {guest.boot_seconds:.1f}s "
                          f"(console {guest.console_log})")
            record: dict[str, Any] = {"boot": n,
                                      "seconds_to_ssh": round(guest.boot_seconds, 2),
                                      "attempts": len(tried), **stages.boot_facts(guest, runtime)}
            boots.append(record)
            try:
                yield guest
            finally:
                guest.shutdown()
                record["peak_rss_kb"] = guest.peak_rss_kb

    return boot


@dataclass(frozen=True)
class BootRequest:
    tree: trees.TreeRequest
    command: tuple[str, ...]
    profile: str = "selftests"
    rev: str | None = None
    accel: str = "auto"
    memory: str = "2G"
    cpus: int = 2
    timeout: int = 600
    output: Path | None = None


def boot_and_run(req: BootRequest, settings: Settings, progress: Progress) -> CommandResult:
    """Build if needed, boot, run one command in the guest (a debugging aid)."""
    run_dir = stages.new_run_dir(settings, "boot", req.output)
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    with tree_lock(settings, tree.id, progress):
        built = stages.stage_build(tree, stages.trees_rev(tree, req.rev), profile, settings,
                                   progress, run_dir)
    decision = stages.stage_accel(req.accel, built, settings, progress)

    def guest_for(attempt: int) -> Guest:
        spec = stages.guest_spec(built, decision, settings, req.memory, req.cpus)
        return Guest(spec, run_dir / f"boot-{attempt}", progress)

    with progress.stage("boot and run"), contextlib.ExitStack() as stack:
        guest = boot_with_one_retry(stack, guest_for, progress)
        progress.info(f"SSH after {guest.boot_seconds:.1f}s; console {guest.console_log}")
        return guest.run_checked(list(req.command), timeout=req.timeout)


# -- the whole test pipeline ------------------------------------------------------
def run_tests(req: TestRequest, settings: Settings, progress: Progress) -> Outcome:
    check_test_request(req, settings)
    run_dir = stages.new_run_dir(settings, "test", req.output)
    report = Report(command=req.reproducer(),
                    started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    report.stages = progress.timings
    report.metadata["tools"] = tool_versions()
    progress.info(f"run directory: {run_dir}")
    _save(report, run_dir)
    exit_code = ExitCode.OK
    runtime = stages.series_runtime(settings)
    text = ""
    try:
        exit_code = _run_tests(req, settings, progress, run_dir, report, runtime)
    except PatchgenError as exc:
        report.error = exc.message
        exit_code = exc.exit_code
        raise
    except KeyboardInterrupt:
        report.error = "interrupted"
        exit_code = ExitCode.INTERRUPTED
        raise
    finally:
        report.metadata["exit_code"] = int(exit_code)
        _save(report, run_dir)
        text = summary(report, runtime.switch_name)
        (run_dir / "summary.txt").write_text(text + "\n")
    return Outcome(report, run_dir, exit_code, text)


def _run_tests(req: TestRequest, settings: Settings, progress: Progress, run_dir: Path,
               report: Report, runtime: Runtime) -> ExitCode:
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    report.metadata.update({"tree": tree.id, "origin": tree.origin, "version": str(tree.version),
                            "base": tree.base, "facts": tree.facts.as_dict(),
                            "profile": profile.name})
    rev = stages.trees_rev(tree, req.rev)
    report.metadata["rev"] = rev
    # Before the build: it may refuse.
    variants = stages.switch_variants(tree, rev, req.switch, runtime)
    _save(report, run_dir)
    with tree_lock(settings, tree.id, progress):
        built = stages.stage_build(tree, rev, profile, settings, progress, run_dir)
        installed = stages.stage_selftests_install(tree, built, settings, progress, run_dir)
    report.build = built.as_dict()
    report.build["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report.metadata["config_digest"] = built.config_digest
    catalogue = kselftest.load_catalogue(settings.selftests_dir / "kselftests.toml")
    plans = kselftest.select(catalogue, installed.tests, req.tests)
    decision = stages.stage_accel(req.accel, built, settings, progress)
    report.metadata["accel"] = decision.accel.value
    report.metadata["accel_reason"] = decision.reason
    expect_file = settings.selftests_dir / "expected" / f"{tree.version.series}.toml"
    expectations = results.load_expectations(expect_file, decision.accel.value)
    report.expectations = str(expectations.source) if expectations.source else None
    boots: list[dict[str, Any]] = []
    report.guest = {"accel": decision.accel.value, "boots": boots,
                    "qemu_opts": qemu_opts(decision.accel)}
    factory = guest_factory(built, decision, req, settings, progress, run_dir, boots, runtime)
    report.metadata["variants"] = [v.name for v in variants if v.name]
    scripts = guest_scripts(settings, runtime, variants, req.churn, run_dir)
    runs = len(plans) * len(variants)
    with progress.stage(f"selftests ({runs} runs, {installed.collection}; "
                        f"{len(scripts)} patchgen scripts)"):
        def keep(so_far: list[results.TestResult]) -> None:
            report.tests = list(so_far)
            _save(report, run_dir)

        report.tests = kselftest.run_tests(factory, installed, plans, expectations, progress,
                                           req.retries, variants, scripts, keep,
                                           equiv_plan(tree, rev, variants, settings, req))
    return ExitCode.TEST_FAILURE if results.failed(report.tests) else ExitCode.OK


def equiv_plan(tree: trees.Tree, rev: str, variants: tuple[kselftest.Variant, ...],
               settings: Settings, req: TestRequest) -> equiv.EquivPlan | None:
    """Equivalence cases: recorded on the unpatched tree, compared at the tip."""
    if not req.equiv:
        return None
    script = settings.selftests_dir / "equiv" / "equiv.sh"
    baseline = settings.cache / "equiv" / f"{tree.id}-{tree.base[:12]}.json"
    if rev == tree.base:
        return equiv.EquivPlan(script, baseline=baseline, record=True)
    if not any(v.sysctls for v in variants):
        return None  # an intermediate commit: nothing to compare
    return equiv.EquivPlan(script, baseline=baseline)


def guest_scripts(settings: Settings, runtime: Runtime, variants: tuple[kselftest.Variant, ...],
                  churn: int = 200, run_dir: Path | None = None
                  ) -> tuple[kselftest.ScriptPlan, ...]:
    """Our runtime checks of the generated programs, when the tree has them:
    patchgen's own, and the series' selftest (templates/selftest, the files
    its last patch adds), run from the templates so that a branch without
    that patch, or an older series, is checked the same way."""
    if not any(v.sysctls for v in variants):
        return ()
    script = settings.selftests_dir / "guest" / runtime.checks
    plans = [kselftest.ScriptPlan(script, 1800 + 3 * churn, {"CHURN": str(churn)})]
    if run_dir is not None:
        source = settings.templates_dir / "selftest"
        helper = build_guest_helper(source / f"{runtime.helper}.c", run_dir)
        plans.append(kselftest.ScriptPlan(source / runtime.selftest, 900,
                                          {runtime.helper_env: str(helper)},
                                          label=f"selftest/{runtime.selftest}"))
    return tuple(plans)


def build_guest_helper(source: Path, run_dir: Path) -> Path:
    """Compile a selftest's C helper on the host (the guest shares its files)."""
    out = run_dir / source.stem
    proc.require("gcc")
    proc.run(["gcc", "-O2", "-Wall", "-o", str(out), str(source)], timeout=300)
    return out


def _save(report: Report, run_dir: Path) -> None:
    write_json(report, run_dir / "report.json")
    write_junit(report, run_dir / "junit.xml")
    (run_dir / "metadata.json").write_text(json.dumps(report.metadata, indent=2) + "\n")


# -- the main job: generate, then test the tip ------------------------------------
@dataclass(frozen=True)
class RunRequest:
    test: TestRequest
    branch: str | None = None
    author: str | None = None
    date: str | None = None


def run_series(req: RunRequest, settings: Settings, progress: Progress) -> Outcome:
    tree = stages.stage_tree(req.test.tree, settings, progress)
    series = stages.plan_series(tree, req.author, settings, progress, local_ok=True)
    branch = stages.commit_series(series, req.branch, req.date, settings, progress).branch
    test = dataclasses.replace(req.test, rev=branch, command="run")
    return run_tests(test, settings, progress)


# -- the benchmark ---------------------------------------------------------------------
@dataclass(frozen=True)
class BenchRequest:
    tree: trees.TreeRequest
    rev: str | None = None  # default: the series branch
    profile: str = "selftests"
    accel: str = "auto"
    reps: int = 5
    count: int = 50000  # packets per forwarding round
    iters: int = 100000  # nf_hook() calls per module run
    mitigations: tuple[str, ...] = ("retpoline", "off")
    configs: tuple[str, ...] = ("none", "filter", "ct", "flowtable")
    hook_counts: tuple[int, ...] = bench.HOOK_COUNTS
    output: Path | None = None
    memory: str = "2G"
    cpus: int = 2
    timing: str = "auto"  # "icount", "wall", or auto (icount under TCG)
    # Hook counts measured again with more programs than the dispatcher holds.
    overflow: tuple[int, ...] = (4, 5)
    control: bool = True  # the control-plane boot
    ctl_base: bool = False  # the control plane of the unpatched base kernel too (a build)
    ctl_hooks: tuple[int, ...] = (1, 10, 64)
    ctl_rounds: int = 10
    netns: int = 100
    chains: int = 50
    cpi: float = bench.CostModel.cpi
    penalty: float = bench.CostModel.penalty
    against: Path | None = None  # an earlier bench.json (or its run directory)


def run_bench(req: BenchRequest, settings: Settings, progress: Progress
              ) -> tuple[bench.BenchResult, Path]:
    from patchgen.series import generate

    run_dir = stages.new_run_dir(settings, "bench", req.output)
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    spec = generate.load_spec(settings.templates_dir)
    rev = _bench_rev(tree, req.rev or spec.branch, spec.runtime)
    with tree_lock(settings, tree.id, progress):
        built = stages.stage_build(tree, rev, profile, settings, progress, run_dir)
        with progress.stage("bench: module"):
            module = bench.build_module(trees.worktree(tree, settings), built.outdir,
                                        settings, progress, run_dir)
    decision = stages.stage_accel(req.accel, built, settings, progress)
    mode = bench.resolve_mode(req.timing, decision.accel)
    icount = mode == "icount"
    cpus = bench.bench_cpus(mode, req.cpus)
    result = bench.BenchResult(decision.accel.value, mode=mode, metadata={
        "tree": tree.id, "version": str(tree.facts.version), "rev": rev,
        "profile": profile.name, "reps": req.reps, "packets_per_round": req.count,
        "calls_per_run": req.iters, "cpus": cpus, "memory": req.memory,
        "qemu_opts": qemu_opts(decision.accel, icount)},
        model=bench.CostModel(req.cpi, req.penalty))
    script = settings.selftests_dir / "bench" / "fwd_bench.sh"
    for mitigation in req.mitigations:
        extra = bench.MITIGATIONS[mitigation]
        with progress.stage(f"bench: retpolines {mitigation} ({mode})"), \
                contextlib.ExitStack() as stack:
            guest = _bench_guest(stack, built, decision, settings, req, cpus, extra, icount,
                                 run_dir / f"boot-{mitigation}", progress)
            # The guest's own word on the mitigation and the switch's default,
            # read before any round sets the switch.
            facts = stages.boot_facts(guest, spec.runtime)
            progress.status("nf_hook() microbenchmark")
            micro, thunks = bench.run_micro(guest, module, spec.runtime.switch, req.reps,
                                            req.iters, req.hook_counts, icount)
            overflow: dict[str, dict[int, list[float]]] = {}
            if req.overflow:
                progress.status(f"nf_hook() with {bench.OVERFLOW_FILL} more programs")
                overflow, more = bench.run_micro(guest, module, spec.runtime.switch, req.reps,
                                                 req.iters, req.overflow, icount,
                                                 bench.OVERFLOW_FILL)
                thunks += more
            progress.status("forwarding benchmark")
            fwd: dict[tuple[str, str], list[float]] = {}
            raw = ""
            try:
                if req.configs:
                    fwd, raw = bench.run_fwd(guest, script, req.reps, req.count,
                                             req.configs, icount)
            except GuestFailure as exc:
                # The nf_hook() figures stand on their own: keep them, and let
                # the forwarding points show up as missing.
                progress.warn(f"forwarding benchmark: {exc.message}")
                fwd, raw = {}, exc.message
            result.raw[mitigation] = {"fwd_output": raw, "micro": micro, "overflow": overflow,
                                      "thunks": thunks, **facts,
                                      "spectre_v2": facts.get("spectre_v2",
                                                              bench.spectre_v2(raw))}
            cost = bench.thunk_cost(thunks)
            if cost is not None:
                result.calibration[mitigation] = cost
            found, missing = bench.comparisons(mitigation, fwd, micro, req.configs,
                                               req.hook_counts, icount, overflow)
            result.comparisons += found
            result.missing += missing
        # What is measured so far survives a later boot that fails.
        bench.write(result, run_dir)
    if req.control:
        _bench_control(result, req, built, decision, settings, module, icount, run_dir,
                       progress, spec.runtime.switch)
        bench.write(result, run_dir)
    if req.control and req.ctl_base:
        with tree_lock(settings, tree.id, progress):
            base = stages.stage_build(tree, tree.base, profile, settings, progress, run_dir)
            with progress.stage("bench: module for the base kernel"):
                base_module = bench.build_module(trees.worktree(tree, settings), base.outdir,
                                                 settings, progress, run_dir,
                                                 "bench-module-base")
        _bench_control(result, req, base, decision, settings, base_module, icount, run_dir,
                       progress, spec.runtime.switch, kernel="base")
    bench.write(result, run_dir)
    if req.against is not None:
        earlier = req.against / "bench.json" if req.against.is_dir() else req.against
        rows = bench.compare_runs(bench.BenchResult.load(earlier), result)
        (run_dir / "bench-spread.txt").write_text(
            bench.format_run_diff(rows, str(earlier)) + "\n")
    return result, run_dir


def _bench_rev(tree: trees.Tree, rev: str, runtime: Runtime) -> str:
    """The commit to benchmark: one with the generator."""
    sha = stages.trees_rev(tree, rev)
    if not any(v.sysctls for v in stages.switch_variants(tree, sha, "auto", runtime)):
        raise UserError(f"{sha[:12]} has no generator to benchmark",
                        hint="patchgen generate first, or give --rev")
    return sha


def _bench_guest(stack: contextlib.ExitStack[bool | None], built: kbuild.BuildResult,
                 decision: vmaccel.AccelDecision, settings: Settings, req: BenchRequest,
                 cpus: int, extra: tuple[str, ...], icount: bool, where: Path,
                 progress: Progress) -> Guest:
    def guest_for(attempt: int) -> Guest:
        spec = stages.guest_spec(built, decision, settings, req.memory, cpus, extra, icount)
        return Guest(spec, where / f"attempt-{attempt}", progress)

    return boot_with_one_retry(stack, guest_for, progress)


def _bench_control(result: bench.BenchResult, req: BenchRequest, built: kbuild.BuildResult,
                   decision: vmaccel.AccelDecision, settings: Settings, module: Path,
                   icount: bool, run_dir: Path, progress: Progress, switch: str,
                   kernel: str = "tip") -> None:
    """Register/unregister at k hooks, namespaces, nft base chains: one boot
    with the requested vCPUs (on one vCPU synchronize_rcu() returns at once,
    which would hide the grace periods a registration waits for)."""
    clock = bench.control_clock("icount" if icount else "wall", req.cpus)
    with progress.stage(f"bench: control plane, {kernel} ({req.cpus} vCPUs, {clock})"), \
            contextlib.ExitStack() as stack:
        guest = _bench_guest(stack, built, decision, settings, req, req.cpus, (),
                             clock == "icount", run_dir / f"boot-control-{kernel}", progress)
        progress.status("register/unregister one hook")
        rows = bench.run_ctl(guest, module, req.ctl_hooks, req.ctl_rounds, kernel,
                             switch=switch if kernel != "base" else None)
        progress.status(f"{req.netns} namespaces, {req.chains} nft base chains")
        rows += bench.run_ctl_script(
            guest, settings.selftests_dir / "bench" / "ctl_bench.sh", req.netns, req.chains,
            kernel)
        where = f"{decision.accel.value} {clock}"
        result.control += [{"clock": where, **row} for row in rows]
    result.metadata["control_cpus"] = req.cpus
