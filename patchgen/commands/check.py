"""patchgen check: build every patch in every config of the matrix, compare W=1
warnings with the parent, run checkpatch; a patch x config table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchgen import check, kconfig, matrix, stages
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.settings import Settings
from patchgen.tree import TreeRequest


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
    run_dir = stages.new_run_dir(settings, "check", req.output)
    progress.info(f"run directory: {run_dir}")
    with tree_lock(settings, tree.id, progress):
        report = check.check_series(tree, branch, profile, settings, progress, run_dir,
                                    w1=req.w1, checkpatch=req.checkpatch,
                                    patches=req.patches, configs=configs)
    text = check.format_report(report)
    (run_dir / "check.txt").write_text(text + "\n")
    return Checked(report, text, run_dir)
