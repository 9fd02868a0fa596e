"""patchgen generate: compute the series from the tree and commit it to its branch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from patchgen import stages
from patchgen.errors import UserError
from patchgen.git import git_date
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.series.generate import Committed, SeriesPlan
from patchgen.settings import Settings
from patchgen.tree import Tree, TreeRequest


@dataclass(frozen=True)
class GenerateRequest:
    tree: TreeRequest
    plan_only: bool = False  # --plan: compute and show, write nothing
    upto: int | None = None  # only the first N patches
    branch: str | None = None  # None: the series' branch (series.toml)
    author: str | None = None  # None: your git identity
    date: str | None = None  # None: now
    fault: str | None = None  # a deliberately broken series (series/faults.py)

    def __post_init__(self) -> None:
        check_upto_and_date(self.upto, self.date)


def check_upto_and_date(upto: int | None, date: str | None) -> None:
    """--upto and --date, before any work (git would refuse the date only
    once the series is computed, as a failure of its own)."""
    if upto is not None and upto < 1:
        raise UserError(f"--upto {upto}: the number of patches to make, 1 or more")
    if date is not None:
        git_date(date)


@dataclass(frozen=True)
class Generated:
    tree: Tree
    series: SeriesPlan
    committed: Committed | None  # None: only planned


def _ignore(series: SeriesPlan) -> None:
    pass


def run(req: GenerateRequest, settings: Settings, progress: Progress,
        on_plan: Callable[[SeriesPlan], None] = _ignore) -> Generated:
    """``on_plan`` sees the series once computed, before anything is written."""
    tree = stages.stage_tree(req.tree, settings, progress)
    if not req.plan_only:
        default = generate.load_spec(settings.templates_dir).branch
        stages.check_branch(tree, req.branch or default, default, req.fault)
    series = stages.plan_series(tree, req.author, settings, progress, req.upto, req.fault,
                                local_ok=req.plan_only)
    on_plan(series)
    if req.plan_only:
        return Generated(tree, series, None)
    done = stages.commit_series(series, req.branch, req.date, settings, progress)
    return Generated(tree, series, done)
