"""patchgen check: build every patch in every config of the matrix, compare W=1
warnings with the parent, run checkpatch; a patch x config table."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchgen import build as kbuild
from patchgen import check, kconfig, kselftest, matrix, smoke, stages
from patchgen import tree as trees
from patchgen.errors import BuildFailure, UserError
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.settings import Settings
from patchgen.tree import TreeRequest

if TYPE_CHECKING:
    from patchgen.series.context import Runtime


@dataclass(frozen=True)
class CheckRequest:
    tree: TreeRequest
    profile: str = "selftests"
    branch: str | None = None  # None: the series' branch (series.toml)
    w1: bool = True
    checkpatch: bool = True
    patches: str | None = None  # "N-M": only these
    matrix: str = "quick"  # or "full"
    configs: tuple[str, ...] = ()  # only these configs of the matrix
    output: Path | None = None
    boot: bool = False  # boot every patch's profile build, run its smoke set
    accel: str = "auto"

    def __post_init__(self) -> None:
        if self.accel != "auto" and not self.boot:
            raise UserError(f"--accel {self.accel} chooses how --boot boots each patch, and "
                            "without --boot nothing boots", hint="add --boot, or leave --accel")


@dataclass(frozen=True)
class Checked:
    report: check.CheckReport
    text: str  # the table, as written to check.txt
    run_dir: Path


def run(req: CheckRequest, settings: Settings, progress: Progress) -> Checked:
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    configs = matrix.select(matrix.load(settings.kernel_config_dir), req.matrix, req.configs)
    tree = stages.stage_tree(req.tree, settings, progress)
    branch = req.branch or generate.load_spec(settings.templates_dir).branch
    check.series_commits(tree, branch, req.patches)  # the branch and --patches, first
    run_dir = stages.new_run_dir(settings, "check", req.output)
    progress.info(f"run directory: {run_dir}")
    with tree_lock(settings, tree.id, progress):
        report = check.check_series(tree, branch, profile, settings, progress, run_dir,
                                    w1=req.w1, checkpatch=req.checkpatch,
                                    patches=req.patches, configs=configs,
                                    boot=booter(tree, settings, progress, run_dir,
                                                req.accel) if req.boot else None)
    text = check.format_report(report)
    (run_dir / "check.txt").write_text(text + "\n")
    return Checked(report, text, run_dir)


def booter(tree: trees.Tree, settings: Settings, progress: Progress, run_dir: Path,
           accel: str = "auto") -> check.BootSmoke:
    """check --boot: the smoke set (smoke.SMOKE) on a patch's build, in boot-<n>/."""
    runtime = stages.series_runtime(settings)

    def boot(pc: check.PatchCheck, built: kbuild.BuildResult) -> check.BootCheck:
        return boot_patch(pc, built, tree, settings, progress, run_dir / f"boot-{pc.number}",
                          runtime, accel)

    return boot


def boot_patch(pc: check.PatchCheck, built: kbuild.BuildResult, tree: trees.Tree,
               settings: Settings, progress: Progress, where: Path, runtime: Runtime,
               accel: str) -> check.BootCheck:
    start = time.monotonic()
    where.mkdir(parents=True, exist_ok=True)
    src = trees.worktree(tree, settings)
    try:
        installed = kselftest.install(src, built.outdir, tree.facts, settings, progress,
                                      where / "kselftest-install.log")
    except BuildFailure as exc:
        return check.BootCheck(smoke.NOT_BUILT, time.monotonic() - start,
                               error=f"kselftests: {exc.message}")
    source = stages.generator_source(tree, pc.sha, runtime)
    module = (stages.build_checks_module(tree, built, runtime, settings, progress, where)
              if source is not None else None)
    progress.status(f"boot: smoke set of patch {pc.number}"
                    + (" (with the runtime checks)" if source is not None else ""))
    done = smoke.run(built, installed, smoke.SMOKE, source, settings, progress, where,
                     runtime, tree.version.series, smoke.Guest(accel=accel), module)
    return check.BootCheck(done.status, time.monotonic() - start, done.switch_default,
                           done.results, done.error)
