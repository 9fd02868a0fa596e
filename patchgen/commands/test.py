"""patchgen test: tree -> build -> kselftest install -> boot -> selftests -> report.

``run`` strings the stages together and always writes the report, also
when a stage fails or the user presses Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import resource
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchgen import equiv, kconfig, kselftest, outputs, results, stages
from patchgen import shard as shards
from patchgen import tree as trees
from patchgen.errors import ExitCode, PatchgenError, UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.report import Report, save_run, summary, tool_versions
from patchgen.settings import Settings
from patchgen.vm import accel as vmaccel
from patchgen.vm.argv import qemu_opts

if TYPE_CHECKING:
    from patchgen.series.context import Runtime




def check_test_request(req: TestRequest, settings: Settings) -> None:
    """What needs more than the request: the profile exists, the test names are
    the tree's.  Cheap, and done before any tree, build or guest work."""
    kconfig.get_profile(settings.kernel_config_dir, req.profile)
    if req.output is not None:
        outputs.check(req.output, "test")  # run commits the series branch before it writes
    stages.require_guest_tools()
    catalogue = kselftest.load_catalogue(settings.catalogue_file)
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
    expect = settings.expectations_file(series)
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
    jobs: int | None = None  # guests at once; None: what the host allows (guest_jobs)
    shard: str | None = None  # "i/N": this machine's part of the run (patchgen/shard.py)

    def __post_init__(self) -> None:
        """Every field that can be judged alone; check_test_request() does the rest."""
        stages.switch_positions(self.switch)
        if self.shard is not None:
            shards.parse(self.shard)
        if not self.tests.strip(" ,"):
            raise UserError("--tests is empty", hint="quick, default, all, or test names")
        jobs = 1 if self.jobs is None else self.jobs
        for name, value, least in (("--retries", self.retries, 0),
                                   ("--churn", self.churn, 0), ("--jobs", jobs, 1)):
            if value < least:
                raise UserError(f"{name} must be {least} or more, got {value}")
        stages.check_guest_options(self.memory, self.cpus, self.accel)

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
        if self.jobs is not None:
            argv += ["--jobs", str(self.jobs)]
        if self.shard is not None:
            argv += ["--shard", str(shards.parse(self.shard))]
        return shlex.join(argv)


@dataclass(frozen=True)
class TestOutcome:
    """What a test run leaves: its report, where it is, and how it ended."""

    report: Report
    run_dir: Path
    exit_code: ExitCode
    summary: str  # as written to summary.txt



def guest_jobs(req: TestRequest, accel: vmaccel.Accel, units: int) -> int:
    """--jobs, or what this host allows (kselftest.default_jobs)."""
    if req.jobs is not None:
        return req.jobs
    return kselftest.default_jobs(accel, os.cpu_count() or 1, mem_available(),
                                  stages.size_bytes(req.memory), req.cpus, units)


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's available memory in bytes (MemAvailable; 0 if unknown)."""
    try:
        text = meminfo.read_text()
    except OSError:
        return 0
    m = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) * 1024 if m else 0




def run(req: TestRequest, settings: Settings, progress: Progress) -> TestOutcome:
    """The request is checked whole before any work (a typo in --tests once cost
    a kernel build)."""
    check_test_request(req, settings)
    run_dir = stages.new_run_dir(settings, "test", req.output)
    report = Report(command=req.reproducer(),
                    started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    report.stages = progress.timings
    report.metadata["tools"] = tool_versions()
    progress.info(f"run directory: {run_dir}")
    save_run(report, run_dir)
    exit_code = ExitCode.OK
    runtime = stages.series_runtime(settings)
    text = ""
    try:
        exit_code = _run(req, settings, progress, run_dir, report, runtime)
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
        save_run(report, run_dir)
        text = summary(report, runtime.switch_name)
        (run_dir / "summary.txt").write_text(text + "\n")
    return TestOutcome(report, run_dir, exit_code, text)


def _run(req: TestRequest, settings: Settings, progress: Progress, run_dir: Path,
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
    save_run(report, run_dir)
    with tree_lock(settings, tree.id, progress):
        built = stages.stage_build(tree, rev, profile, settings, progress, run_dir)
        installed = stages.stage_selftests_install(tree, built, settings, progress, run_dir)
        generator = any(v.sysctls for v in variants)
        module = (stages.build_checks_module(tree, built, runtime, settings, progress, run_dir)
                  if generator else None)
    report.build = built.as_dict()
    report.build["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report.metadata["config_digest"] = built.config_digest
    catalogue = kselftest.load_catalogue(settings.catalogue_file)
    plans = kselftest.select(catalogue, installed.tests, req.tests)
    decision = stages.stage_accel(req.accel, built, settings, progress)
    report.metadata["accel"] = decision.accel.value
    report.metadata["accel_reason"] = decision.reason
    expect_file = settings.expectations_file(tree.version.series)
    expectations = results.load_expectations(expect_file, decision.accel.value)
    report.expectations = str(expectations.source) if expectations.source else None
    boots: list[dict[str, Any]] = []
    report.guest = {"accel": decision.accel.value, "boots": boots,
                    "qemu_opts": qemu_opts(decision.accel)}
    factory = stages.guest_factory(built, decision, settings, run_dir, boots, runtime,
                                   memory=req.memory, cpus=req.cpus)
    report.metadata["variants"] = [v.name for v in variants if v.name]
    scripts = stages.guest_scripts(settings, runtime, generator, req.churn, run_dir, module)
    equivs = equiv_plan(tree, rev, variants, settings, req)
    keys = kselftest.work_keys(plans, variants, scripts, equivs is not None)
    durations = shards.load_durations(
        settings.durations_file(tree.version.series), decision.accel.value)
    report.shard = split(req.shard, keys, durations)
    only = None
    if report.shard is not None:
        only = set(report.shard.keys)
        progress.info(f"shard {report.shard.shard}: {len(only)} of "
                      f"{len(report.shard.all_keys)} units")
    jobs = guest_jobs(req, decision.accel, len(keys) if only is None else len(only))
    report.guest["jobs"] = jobs
    mine = [u for u in kselftest.work_units(plans, variants, scripts, False)
            if only is None or u.key in only]
    runs = sum(1 for u in mine if u.plan is not None)
    with progress.stage(f"selftests ({runs} runs, {installed.collection}; "
                        f"{len(mine) - runs} patchgen scripts; {jobs} "
                        f"{'guest' if jobs == 1 else 'guests at once'})"):
        # Cases that test what a later patch adds (a commit inside the series).
        unmet = stages.unmet_needs(runtime.needs, stages.generator_source(tree, rev, runtime))

        def keep(so_far: list[results.TestResult]) -> None:
            report.tests = results.skip_unmet(so_far, unmet)
            save_run(report, run_dir)

        ran = kselftest.run_tests(factory, installed, plans, expectations, progress,
                                  req.retries, variants, scripts, keep, equivs, jobs, only,
                                  durations.get)
        report.tests = results.skip_unmet(ran.results, unmet)
        stages.say_unmet(progress, report.tests, unmet)
    record_lanes(report, ran.lanes, progress.timings[-1].seconds)
    return ExitCode.TEST_FAILURE if results.failed(report.tests) else ExitCode.OK


def record_lanes(report: Report, lanes: tuple[kselftest.LaneRecord, ...], wall: float) -> None:
    """What each guest did, and the wall time that running them at once saved:
    the guests' busy time, added up, less the wall time of the selftests stage."""
    report.guest["lanes"] = [lane.as_dict() for lane in lanes]
    busy = sum(lane.busy_seconds for lane in lanes)
    report.guest["saved_seconds"] = round(max(0.0, busy - wall), 2)


def split(shard: str | None, keys: list[str],
          durations: shards.Durations) -> shards.ShardInfo | None:
    """This shard's units of the run (kselftest.work_keys()), and all of them
    (None: not sharded)."""
    if shard is None:
        return None
    which = shards.parse(shard)
    mine = shards.assign(keys, durations, which.count)[which.index - 1]
    return shards.ShardInfo(which, tuple(mine), tuple(keys),
                            str(durations.source) if durations.source else None)


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


