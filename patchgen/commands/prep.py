"""patchgen prep: format the series for the list; with --send, send it, or with
--mark-sent, record the version as sent."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from patchgen import prep, stages
from patchgen.git import Git
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.series.render import Renderer
from patchgen.settings import Settings
from patchgen.tree import Tree, TreeRequest


@dataclass(frozen=True)
class PrepCommandRequest:
    tree: TreeRequest
    branch: str | None = None  # None: the series' branch (series.toml)
    rfc: bool = True
    prefix: str | None = None  # None: series.toml's
    to: tuple[str, ...] = ()  # besides series.toml's
    cc: tuple[str, ...] = ()
    output: Path | None = None
    b4: bool = False  # also write b4's mails (b4 send -o)
    send: bool = False
    mark_sent: bool = False
    force: bool = False  # send even if a check failed
    yes: bool = False  # send without asking

    def __post_init__(self) -> None:
        for option, values in (("--to", self.to), ("--cc", self.cc)):
            for value in values:
                prep.check_recipient(option, value)


class Delivery(enum.Enum):
    DRY_RUN = "dry run"  # nothing sent
    MARKED = "marked"  # nothing sent, the version tagged as sent
    REFUSED = "refused"  # a check failed and --force was not given
    DECLINED = "declined"  # the confirmation was not given
    SENT = "sent"  # sent and tagged


@dataclass(frozen=True)
class PrepOutcome:
    prepared: prep.Prepared
    delivery: Delivery
    tag: str | None = None  # MARKED, SENT: the tag recording the version sent


def _nothing(text: str) -> None:
    pass


def run(req: PrepCommandRequest, settings: Settings, progress: Progress, *,
        on_prepared: Callable[[prep.Prepared], None],
        confirm: Callable[[prep.Prepared], bool],
        on_sent: Callable[[str], None] = _nothing) -> PrepOutcome:
    """``on_prepared`` sees the result of prep before anything is sent or
    tagged; ``confirm`` is asked before sending (not with ``yes``);
    ``on_sent`` gets git send-email's output before the version is tagged."""
    tree = stages.stage_tree(req.tree, settings, progress)
    spec = generate.load_spec(settings.templates_dir)
    defaults = spec.prep
    preq = prep.PrepRequest(
        branch=req.branch or spec.branch, rfc=req.rfc,
        prefix=req.prefix if req.prefix is not None else defaults.prefix,
        to=defaults.to + req.to, cc=defaults.cc + req.cc, output=req.output, b4=req.b4)
    with progress.stage("prep: format-patch, cover letter, recipients, checks"), \
            tree_lock(settings, tree.id, progress):
        done = prep.prep(tree, preq, settings, Renderer(settings.templates_dir), spec)
    on_prepared(done)
    if not req.send and not req.mark_sent:
        return PrepOutcome(done, Delivery.DRY_RUN)
    # Recording a version as sent is as good as sending it: the same gate.
    if not done.ok and not req.force:
        return PrepOutcome(done, Delivery.REFUSED)
    if req.mark_sent:
        return PrepOutcome(done, Delivery.MARKED, prep.mark_sent(tree, preq.branch, done))
    if not req.yes and not confirm(done):
        return PrepOutcome(done, Delivery.DECLINED)
    on_sent(_send(tree, preq.branch, done))
    return PrepOutcome(done, Delivery.SENT, prep.mark_sent(tree, preq.branch, done))


def _send(tree: Tree, branch: str, done: prep.Prepared) -> str:
    git = Git(tree.repo)
    sender = str(git.commit_info(git.rev_parse(branch)).author)
    return prep.send_email(git, done.files, sender, dry_run=False)
