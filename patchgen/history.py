"""A local history of test results: flakes counted, pass rates shown; and of
stage timings, so that a slowdown shows.

Each run appends one line per test to a JSON-lines file.  A test that
failed and then passed on retry is a flake; the summary shows each test's
recent pass rate.  Known-flaky tests are still run and still shown.  Next
to it (stages_path), one line per run holds the seconds of each stage; a
stage well over its median of the last runs is named in the summary.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from patchgen.progress import format_seconds

if TYPE_CHECKING:
    from patchgen.report import Report
    from patchgen.results import TestResult

WINDOW = 10  # runs a pass rate is computed over


@dataclass(frozen=True)
class Rate:
    runs: int
    passed: int
    flaky: int

    def __str__(self) -> str:
        text = f"{self.passed}/{self.runs}"
        return text + (f" ({self.flaky} flaky)" if self.flaky else "")


def key(test: TestResult) -> str:
    return f"{test.name}[{test.variant}]" if test.variant else test.name


def append(path: Path, report: Report, run_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    tree = report.metadata.get("tree", "?")
    with path.open("a") as f:
        for t in report.tests:
            f.write(json.dumps({"run": run_id, "when": when, "tree": tree, "test": key(t),
                                "outcome": t.outcome.value}) + "\n")


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn line from an interrupted run
    return out


def rates(entries: Iterable[dict[str, Any]], tree: str | None = None,
          window: int = WINDOW) -> dict[str, Rate]:
    by_test: dict[str, list[str]] = {}
    for e in entries:
        if tree is None or e.get("tree") == tree:
            by_test.setdefault(e["test"], []).append(e["outcome"])
    out = {}
    for test, outcomes in by_test.items():
        recent = outcomes[-window:]
        out[test] = Rate(len(recent), sum(o == "pass" for o in recent),
                         sum(o == "flaky" for o in recent))
    return out


# -- stage timings: a slowdown shows ---------------------------------------------------------
SLOWER = 1.5  # a stage this many times its recent median is flagged
SLOWER_SECONDS = 10.0  # ... and at least this much slower (short stages jitter)
MIN_RUNS = 3  # fewer earlier runs of a stage: nothing to judge by


@dataclass(frozen=True)
class Slowdown:
    stage: str
    seconds: float
    median: float
    runs: int  # earlier runs the median is of

    def __str__(self) -> str:
        return (f"{self.stage} {format_seconds(self.seconds)}, median "
                f"{format_seconds(self.median)} of the last {self.runs} runs "
                f"({self.seconds / self.median:.1f}x)")


def stages_path(path: Path) -> Path:
    """The stage timings, next to the flaky history ``path``."""
    return path.with_name(f"{path.stem}-stages.jsonl")


def stage_name(name: str) -> str:
    """A stage by its name without what varies from run to run ("selftests (16 runs, ...)")."""
    return name.split(" (", 1)[0]


def timings(report: Report, extra: Mapping[str, float] | None = None) -> dict[str, float]:
    """Seconds per stage of a run: ``extra`` (the pipeline's own steps), then the report's."""
    out = dict(extra or {})
    for s in report.stages:
        out[stage_name(s.name)] = round(out.get(stage_name(s.name), 0.0) + s.seconds, 2)
    return out


def append_stages(path: Path, run_id: str, tree: str, shard: str,
                  stages: Mapping[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with path.open("a") as f:
        f.write(json.dumps({"run": run_id, "when": when, "tree": tree, "shard": shard,
                            "stages": dict(stages)}) + "\n")


def stage_series(entries: Iterable[dict[str, Any]], tree: str,
                 shard: str) -> dict[str, list[float]]:
    """Seconds per stage, oldest first, of the runs of one tree (and shard: its own work)."""
    out: dict[str, list[float]] = {}
    for e in entries:
        if e.get("tree") == tree and e.get("shard", "") == shard and "stages" in e:
            for name, seconds in e["stages"].items():
                out.setdefault(name, []).append(float(seconds))
    return out


def slowdowns(past: Mapping[str, list[float]], now: Mapping[str, float],
              window: int = WINDOW) -> list[Slowdown]:
    """Stages of this run well over their median of the last ``window`` earlier runs."""
    out = []
    for name, seconds in now.items():
        recent = past.get(name, [])[-window:]
        if len(recent) < MIN_RUNS:
            continue
        median = statistics.median(recent)
        if seconds > SLOWER * median and seconds - median >= SLOWER_SECONDS:
            out.append(Slowdown(name, seconds, median, len(recent)))
    return out
