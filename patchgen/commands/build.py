"""patchgen build: configure and build one commit (default: the tree's base)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchgen import kconfig, stages
from patchgen.build import BuildResult
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.tree import TreeRequest


@dataclass(frozen=True)
class BuildRevRequest:
    tree: TreeRequest
    profile: str = "selftests"
    rev: str | None = None  # None: the tree's base commit
    output: Path | None = None


def run(req: BuildRevRequest, settings: Settings, progress: Progress) -> BuildResult:
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    tree = stages.stage_tree(req.tree, settings, progress)
    rev = stages.trees_rev(tree, req.rev)  # before the run directory: it may refuse
    run_dir = stages.new_run_dir(settings, "build", req.output)
    with tree_lock(settings, tree.id, progress):
        return stages.stage_build(tree, rev, profile, settings, progress, run_dir)
