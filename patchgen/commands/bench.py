"""patchgen bench: the cost of both dispatch paths, interleaved round by round,
with retpolines on and off; bench.txt, bench.json, bench.png."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchgen import bench, kconfig, stages
from patchgen import build as kbuild
from patchgen import tree as trees
from patchgen.errors import GuestFailure, UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.vm import accel as vmaccel
from patchgen.vm.argv import qemu_opts
from patchgen.vm.guest import Guest, boot_with_one_retry

if TYPE_CHECKING:
    from patchgen.series.context import Runtime


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

    def __post_init__(self) -> None:
        """What can be judged alone, before the build the benchmark needs."""
        stages.check_guest_options(self.memory, self.cpus, self.accel)
        for name, value in (("--reps", self.reps), ("--count", self.count),
                            ("--iters", self.iters), ("--ctl-rounds", self.ctl_rounds),
                            ("--netns", self.netns), ("--chains", self.chains)):
            if value < 1:
                raise UserError(f"{name} must be 1 or more, got {value}")
        unknown = [m for m in self.mitigations if m not in bench.MITIGATIONS]
        if unknown:
            raise UserError(f"--retpolines takes {', '.join(bench.MITIGATIONS)}, got "
                            f"{','.join(unknown)}")
        if not self.mitigations and not self.control:
            raise UserError("nothing to measure: --retpolines '' and --no-control")
        bad = [c for c in self.configs if c not in bench.CONFIGS]
        if bad:
            raise UserError(f"--configs takes {', '.join(bench.CONFIGS)}, got {','.join(bad)}")
        self._check_counts()
        if not (math.isfinite(self.cpi) and self.cpi > 0):
            raise UserError(f"--cpi must be a positive number, got {self.cpi}")
        if not (math.isfinite(self.penalty) and self.penalty >= 0):
            raise UserError(f"--penalty must be 0 or more, got {self.penalty}")
        if self.timing not in ("auto", *bench.MODES):
            raise UserError(f"--timing takes auto, {', '.join(bench.MODES)}; got {self.timing!r}")
        if self.against is not None and not self.against.exists():
            raise UserError(f"--against {self.against}: no such file or run directory")
        if self.ctl_base and not self.control:
            raise UserError("--ctl-base measures the control plane of the base kernel too, "
                            "and --no-control measures no control plane")
        if self.timing == "icount" and self.accel == "kvm":
            bench.resolve_mode(self.timing, vmaccel.Accel.KVM)  # says why


    def _check_counts(self) -> None:
        """Hook counts the module takes: insmod would refuse them after the boot."""
        if self.mitigations and not self.hook_counts:
            raise UserError("--hooks names no hook count")
        for name, counts, low in (("--hooks", self.hook_counts, 1),
                                  ("--overflow", self.overflow, 1),
                                  ("--ctl-hooks", self.ctl_hooks, 0)):
            for n in counts:
                if not low <= n <= bench.MAX_HOOKS:
                    raise UserError(f"{name} takes hook counts from {low} to "
                                    f"{bench.MAX_HOOKS}, got {n}")


@dataclass(frozen=True)
class BenchOutcome:
    result: bench.BenchResult
    run_dir: Path
    spread: str | None  # bench-spread.txt of the run directory, if there is one


def run(req: BenchRequest, settings: Settings, progress: Progress) -> BenchOutcome:
    from patchgen.series import generate

    stages.require_guest_tools()
    # Read now: a file that is no bench run would otherwise be found out
    # only after every build and boot.
    earlier = _earlier(req.against)
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    spec = generate.load_spec(settings.templates_dir)
    rev = _bench_rev(tree, req.rev, spec.branch, spec.runtime)
    run_dir = stages.new_run_dir(settings, "bench", req.output)
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
    for mitigation in req.mitigations:
        extra = bench.MITIGATIONS[mitigation]
        with progress.stage(f"bench: retpolines {mitigation} ({mode})"), \
                contextlib.ExitStack() as stack:
            guest = _bench_guest(stack, built, decision, settings, req, cpus, extra, icount,
                                 run_dir / f"boot-{mitigation}", progress)
            _bench_data_plane(result, mitigation, guest, module, req, icount, settings,
                              progress, spec.runtime)
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
    _against(earlier, result, run_dir)
    spread = run_dir / "bench-spread.txt"
    return BenchOutcome(result, run_dir, spread.read_text() if spread.exists() else None)


def _bench_data_plane(result: bench.BenchResult, mitigation: str, guest: Guest, module: Path,
                      req: BenchRequest, icount: bool, settings: Settings, progress: Progress,
                      runtime: Runtime) -> None:
    """nf_hook() and forwarding in one guest booted with ``mitigation``."""
    # The guest's own word on the mitigation and the switch's default,
    # read before any round sets the switch.
    facts = stages.boot_facts(guest, runtime)
    # Forwarding first, on a kernel no other step has touched: after the
    # nf_hook() overflow step (hooks on 64 devices, more programs than the
    # dispatcher holds) the forwarding rounds of one boot took one of two
    # levels 143 instructions per packet apart, on both paths, in 8 of 20
    # rounds (6.1, filter); without it, in 0 of 20 to 5 of 32.
    progress.status("forwarding benchmark")
    fwd: dict[tuple[str, str], list[float]] = {}
    raw = ""
    try:
        if req.configs:
            fwd, raw = bench.run_fwd(guest, settings.selftests_dir / "bench" / "fwd_bench.sh",
                                     req.reps, req.count, req.configs, icount)
    except GuestFailure as exc:
        # The nf_hook() figures stand on their own: keep them, and let
        # the forwarding points show up as missing.
        progress.warn(f"forwarding benchmark: {exc.message}")
        fwd, raw = {}, exc.message
    progress.status("nf_hook() microbenchmark")
    micro, thunks = bench.run_micro(guest, module, runtime.switch, req.reps,
                                    req.iters, req.hook_counts, icount)
    overflow: dict[str, dict[int, list[float]]] = {}
    if req.overflow:
        progress.status(f"nf_hook() with {bench.OVERFLOW_FILL} more programs")
        overflow, more = bench.run_micro(guest, module, runtime.switch, req.reps,
                                         req.iters, req.overflow, icount,
                                         bench.OVERFLOW_FILL)
        thunks += more
    result.raw[mitigation] = {"fwd_output": raw, "micro": micro, "overflow": overflow,
                              "thunks": thunks, **facts,
                              "spectre_v2": facts.get("spectre_v2", bench.spectre_v2(raw))}
    cost = bench.thunk_cost(thunks)
    if cost is not None:
        result.calibration[mitigation] = cost
    found, missing = bench.comparisons(mitigation, fwd, micro, req.configs,
                                       req.hook_counts, icount, overflow)
    result.comparisons += found
    result.missing += missing


def _earlier(against: Path | None) -> tuple[Path, bench.BenchResult] | None:
    """--against: the earlier run's bench.json (given, or in the run directory given)."""
    if against is None:
        return None
    path = against / "bench.json" if against.is_dir() else against
    return path, bench.BenchResult.load(path)


def _against(earlier: tuple[Path, bench.BenchResult] | None, result: bench.BenchResult,
             run_dir: Path) -> None:
    """--against: the run-to-run difference of every median, to bench-spread.txt."""
    if earlier is None:
        return
    path, data = earlier
    rows = bench.compare_runs(data, result)
    (run_dir / "bench-spread.txt").write_text(bench.format_run_diff(rows, str(path)) + "\n")


def _bench_rev(tree: trees.Tree, rev: str | None, branch: str, runtime: Runtime) -> str:
    """The commit to benchmark (default: the series' tip): one with the generator."""
    sha = stages.trees_rev(tree, rev) if rev else \
        trees.series_tip(tree, branch, named_with="--rev")
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
        return Guest(spec, where / f"attempt-{attempt}", progress,
                     ssh_keys=stages.guest_ssh_keys(settings))

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

