"""patchgen run, the main job: generate the series, then test its tip."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from patchgen import stages
from patchgen.commands import test as test_cmd
from patchgen.commands.generate import check_upto_and_date
from patchgen.commands.test import TestOutcome, TestRequest
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.settings import Settings


@dataclass(frozen=True)
class RunRequest:
    test: TestRequest
    branch: str | None = None
    author: str | None = None
    date: str | None = None


def run(req: RunRequest, settings: Settings, progress: Progress) -> TestOutcome:
    test_cmd.check_test_request(req.test, settings)  # before any work
    check_upto_and_date(None, req.date)
    tree = stages.stage_tree(req.test.tree, settings, progress)
    default = generate.load_spec(settings.templates_dir).branch
    stages.check_branch(tree, req.branch or default, default)
    series = stages.plan_series(tree, req.author, settings, progress, local_ok=True)
    branch = stages.commit_series(series, req.branch, req.date, settings, progress).branch
    tip = dataclasses.replace(req.test, rev=branch, command="run")
    return test_cmd.run(tip, settings, progress)

