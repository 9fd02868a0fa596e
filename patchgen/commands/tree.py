"""patchgen tree: obtain, prepare and probe a kernel tree."""

from __future__ import annotations

from patchgen import stages
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.tree import Tree, TreeRequest


def run(req: TreeRequest, settings: Settings, progress: Progress) -> Tree:
    return stages.stage_tree(req, settings, progress)
