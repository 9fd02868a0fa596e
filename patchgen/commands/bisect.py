"""patchgen bisect TEST: the first patch of the series that changes TEST's result.

Each probe builds the commit in the profile's build directory (incremental,
ccache), boots it and runs TEST alone at the commit's default switch
position (patchgen/smoke.py); patchgen/bisect.py does the search.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from patchgen import bisect, kconfig, kselftest, runfile, smoke, stages
from patchgen import tree as trees
from patchgen.errors import BuildFailure, UserError
from patchgen.git import Git
from patchgen.lock import tree_lock
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.settings import Settings

if TYPE_CHECKING:
    from patchgen.series.context import Runtime


@dataclass(frozen=True)
class BisectRequest:
    tree: trees.TreeRequest
    test: str
    good: str | None = None  # None: the tree's base
    bad: str | None = None  # None: the tip of the series' branch
    branch: str | None = None  # None: the series' branch (series.toml)
    profile: str = "selftests"
    accel: str = "auto"
    retries: int = 1
    output: Path | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise UserError(f"--retries must be 0 or more, got {self.retries}")

    def reproducer(self, good: str, bad: str) -> str:
        argv = ["patchgen", "bisect", self.test]
        if self.tree.path is not None:
            argv += ["--tree", str(self.tree.path)]
        else:
            argv += ["--version", self.tree.version or trees.default_series()]
        return shlex.join([*argv, "--good", good[:12], "--bad", bad[:12]])


@dataclass(frozen=True)
class Bisected:
    report: bisect.BisectReport
    text: str
    run_dir: Path


def run(req: BisectRequest, settings: Settings, progress: Progress) -> Bisected:
    profile = kconfig.get_profile(settings.kernel_config_dir, req.profile)
    runtime = stages.series_runtime(settings)
    tree = stages.stage_tree(req.tree, settings, progress)
    git = Git(tree.repo)
    branch = req.branch or generate.load_spec(settings.templates_dir).branch
    # The series numbers the probes; without --bad, its tip is the bad end.
    tip = trees.series_tip(tree, branch)
    good = git.rev_parse(req.good) if req.good else tree.base
    bad = git.rev_parse(req.bad) if req.bad else tip
    commits = commit_range(git, good, bad)
    bisect.check_test(req.test, _tests_at(git, (good, bad)),
                      stages.script_cases(settings, runtime))
    numbers = {sha: n for n, sha in enumerate([tree.base, *git.log_shas(f"{tree.base}..{tip}")])}
    run_dir = stages.new_run_dir(settings, "bisect", req.output)
    progress.info(f"run directory: {run_dir}")
    report = bisect.BisectReport(tree.id, req.test, good, bad)
    selection = smoke.for_test(req.test, runtime)

    def probe(i: int) -> str:
        sha = commits[i]
        with progress.stage(f"bisect step {len(report.steps) + 1}: {req.test} at "
                            f"{_where(numbers.get(sha, -1))} {sha[:12]}"):
            step = _probe(sha, numbers.get(sha, -1), git, tree, profile, selection, req,
                          settings, progress, run_dir / f"step-{len(report.steps) + 1}", runtime)
        report.steps.append(step)
        progress.info(step.line())
        _save(report, run_dir)
        return step.result

    found = bisect.search(len(commits), probe)
    if found is not None:
        report.first = numbers.get(commits[found], -1)
        report.reproducer = req.reproducer(commits[found - 1], commits[found])
    _save(report, run_dir)
    text = bisect.format_report(report)
    (run_dir / "bisect.txt").write_text(text + "\n")
    return Bisected(report, text, run_dir)


def commit_range(git: Git, good: str, bad: str) -> list[str]:
    """[good, ..., bad] along the first parents; good must be an ancestor of bad."""
    if good == bad:
        raise UserError(f"--good and --bad are the same commit ({good[:12]}): nothing to bisect")
    if git.run("merge-base", "--is-ancestor", good, bad, check=False).returncode != 0:
        raise UserError(f"--good {good[:12]} is not an ancestor of --bad {bad[:12]}")
    return [good, *git.log_shas(f"{good}..{bad}")]


def _tests_at(git: Git, revs: tuple[str, ...]) -> list[str]:
    """The netfilter selftests the tree's Makefile lists at any of ``revs``."""
    names: list[str] = []
    for rev in revs:
        for d in kselftest.SELFTEST_DIRS:
            res = git.run("show", f"{rev}:{kselftest.SELFTESTS_ROOT}/{d}/Makefile", check=False)
            if res.returncode == 0:
                names += [n for n in kselftest.makefile_tests(res.stdout) if n not in names]
    return names


def _where(number: int) -> str:
    return "base" if number == 0 else f"patch {number}" if number > 0 else "commit"


def _probe(sha: str, number: int, git: Git, tree: trees.Tree, profile: kconfig.Profile,
           selection: smoke.Selection, req: BisectRequest, settings: Settings,
           progress: Progress, where: Path, runtime: Runtime) -> bisect.Step:
    start = time.monotonic()
    subject = git.commit_info(sha).subject
    where.mkdir(parents=True, exist_ok=True)
    try:
        with tree_lock(settings, tree.id, progress):
            built = stages.stage_build(tree, sha, profile, settings, progress, where)
            installed = stages.stage_selftests_install(tree, built, settings, progress, where)
            source = stages.generator_source(tree, sha, runtime)
            module = (stages.build_checks_module(tree, built, runtime, settings, progress,
                                                 where) if source is not None else None)
    except BuildFailure as exc:
        return bisect.Step(number, sha, subject, smoke.NOT_BUILT, time.monotonic() - start,
                           exc.message.splitlines()[0])
    done = smoke.run(built, installed, selection, source, settings, progress, where, runtime,
                     tree.version.series, smoke.Guest(accel=req.accel, retries=req.retries),
                     module)
    result = done.outcome_of(req.test)
    mine = [r for r in done.results if r.name == req.test or r.name.startswith(req.test + ":")]
    detail = done.error or ", ".join(
        f"{r.name} {r.outcome.value}" for r in mine if r.outcome.value != result)
    return bisect.Step(number, sha, subject, result, time.monotonic() - start, detail)


def _save(report: bisect.BisectReport, run_dir: Path) -> None:
    runfile.write(run_dir / bisect.BisectReport.FILE, report.to_json())
