"""Bisect a series for the first patch that changes one test's result.

The result of the test at the good commit (by default the series' base)
is the reference; the search is for the first commit from there to the
bad one (the series' tip) whose result is anything else: another outcome,
"not built", "no boot".  Binary search, the two ends probed first: when
they agree there is nothing to find.  The probe (commands/bisect.py)
builds in the profile's build directory, so builds are incremental with
ccache, as everywhere else.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from patchgen import runfile
from patchgen.errors import ExitCode, UserError

# A commit's result, by its index in [good, ..., bad].
Probe = Callable[[int], str]

# The exit code when the good and the bad commit give the same result.
NO_CHANGE = ExitCode.TEST_FAILURE


def search(count: int, probe: Probe) -> int | None:
    """The index of the first of ``count`` commits (0: good, count-1: bad)
    whose result differs from commit 0's, or None when the bad one's does not."""
    if count < 2:
        raise UserError("bisect needs at least two commits (a good and a bad one)")
    good = probe(0)
    if probe(count - 1) == good:
        return None
    lo, hi = 0, count - 1  # lo: good's result; hi: another
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(mid) == good:
            lo = mid
        else:
            hi = mid
    return hi


def check_test(test: str, known: Sequence[str], scripts: Mapping[str, Sequence[str]]) -> None:
    """TEST is one kselftest of the tree, or one of our scripts, whole or one
    of its cases (``scripts``: each script's cases, stages.script_cases())."""
    if "," in test or not test.strip():
        raise UserError(f"bisect takes one test, got {test!r}")
    script, colon, case = test.partition(":")
    if script in scripts:
        if colon and case not in scripts[script]:
            raise UserError(f"{script} has no case {case!r}",
                            hint="its cases: " + ", ".join(scripts[script]))
        return
    if test in known:
        return
    if test in ("quick", "default", "all"):
        raise UserError(f"bisect takes one test, not the tier {test!r}")
    # The series' selftest is a kselftest of the tree by the name of our script.
    choices = list(dict.fromkeys([*known, *scripts]))
    close = difflib.get_close_matches(test, choices, n=3)
    raise UserError(f"unknown test {test!r}",
                    hint=f"did you mean: {', '.join(close)}" if close
                    else "known: " + ", ".join(choices))


@dataclass
class Step:
    """One probed commit."""

    number: int  # in the series (0: its base); -1: not in the series
    sha: str
    subject: str
    result: str  # pass, fail, ..., "not run", "not built", "no boot"
    seconds: float
    detail: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Step:
        return cls(runfile.integer(d, "number"), runfile.text(d, "sha"),
                   runfile.text(d, "subject"), runfile.text(d, "result"),
                   runfile.number(d, "seconds"), runfile.text(d, "detail"))

    def line(self) -> str:
        where = "base" if self.number == 0 else f"patch {self.number}" if self.number > 0 \
            else "commit"
        return (f"{where:>8} {self.sha[:12]} {self.result:<9} {self.seconds:6.0f}s  "
                f"{self.subject}" + (f"  ({self.detail})" if self.detail else ""))


@dataclass
class BisectReport(runfile.RunFile):
    """bisect.json: the probes in the order made, and the first patch found."""

    FILE = "bisect.json"

    tree: str
    test: str
    good: str
    bad: str
    steps: list[Step] = field(default_factory=list)
    first: int | None = None  # number of the first patch whose result differs
    reproducer: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": self.SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> Self:
        return cls(runfile.text(d, "tree"), runfile.text(d, "test"), runfile.text(d, "good"),
                   runfile.text(d, "bad"), [Step.from_dict(s) for s in runfile.items(d, "steps")],
                   runfile.opt_integer(d, "first"), runfile.text(d, "reproducer"))

    def step(self, sha: str) -> Step | None:
        return next((s for s in self.steps if s.sha == sha), None)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.first is not None else NO_CHANGE


def format_report(report: BisectReport) -> str:
    good, bad = report.step(report.good), report.step(report.bad)
    lines = [f"bisect of {report.test} on {report.tree} "
             f"({report.good[:12]}..{report.bad[:12]}):", ""]
    lines += [f"  {n:>2}. {s.line()}" for n, s in enumerate(report.steps, 1)]
    lines.append("")
    first = next((s for s in report.steps if s.number == report.first), None) \
        if report.first is not None else None
    if first is None or good is None:
        same = good.result if good is not None else "?"
        lines.append(f"  no change: {report.test} gives {same} at both ends")
    else:
        lines.append(f"  first patch that changes {report.test}: {first.number} "
                     f"{first.sha[:12]} {first.subject} ({good.result} -> {first.result})")
        if bad is not None and bad.result != first.result:
            lines.append(f"  (at the bad end: {bad.result})")
    if report.reproducer:
        lines.append(f"  reproduce: {report.reproducer}")
    return "\n".join(lines)
