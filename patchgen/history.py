"""A local history of test results: flakes counted, pass rates shown.

Each run appends one line per test to a JSON-lines file.  A test that
failed and then passed on retry is a flake; the summary shows each test's
recent pass rate.  Known-flaky tests are still run and still shown.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
