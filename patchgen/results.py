"""Typed test results, and their comparison with recorded expectations."""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from patchgen import runfile


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    TIMEOUT = "timeout"
    CRASH = "crash"
    FLAKY = "flaky"  # failed, then passed on retry

    @property
    def bad(self) -> bool:
        return self in (Outcome.FAIL, Outcome.TIMEOUT, Outcome.CRASH)


class Change(enum.Enum):
    SAME = "as expected"
    REGRESSION = "REGRESSION"
    IMPROVEMENT = "improvement"
    CHANGED = "changed"
    NEW = "no expectation"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    seconds: float
    returncode: int | None
    output: str  # the test's output (tail), for the report
    detail: str = ""  # directive, crash kind, ...
    console: tuple[str, ...] = ()  # console excerpt when the kernel was in trouble

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "seconds": round(self.seconds, 2),
                "returncode": self.returncode, "detail": self.detail, "output": self.output,
                "console": list(self.console)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attempt:
        return cls(Outcome(runfile.text(d, "outcome")), runfile.number(d, "seconds"),
                   runfile.opt_integer(d, "returncode"), runfile.text(d, "output"),
                   runfile.text(d, "detail"), tuple(runfile.texts(d, "console")))


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    name: str
    outcome: Outcome
    attempts: tuple[Attempt, ...]
    expected: Outcome | None = None
    why_expected: str = ""
    variant: str = ""  # e.g. "nf_hook_bpf=0": which dispatch path ran

    @property
    def label(self) -> str:
        return f"{self.name} [{self.variant}]" if self.variant else self.name

    @property
    def seconds(self) -> float:
        return sum(a.seconds for a in self.attempts)

    @property
    def change(self) -> Change:
        return compare(self.outcome, self.expected)

    @property
    def failing_output(self) -> str:
        bad = [a for a in self.attempts if a.outcome.bad]
        return bad[0].output if bad else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variant": self.variant,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 2),
            "expected": self.expected.value if self.expected else None,
            "why_expected": self.why_expected,
            "change": self.change.value,
            "attempts": [a.as_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TestResult:
        """What as_dict() wrote; its derived keys (seconds, change) are not read."""
        expected = runfile.opt_text(d, "expected")
        attempts = tuple(Attempt.from_dict(a) for a in runfile.items(d, "attempts"))
        if not attempts:
            raise ValueError(f"test {runfile.text(d, 'name')!r} has no attempts")
        return cls(runfile.text(d, "name"), Outcome(runfile.text(d, "outcome")), attempts,
                   Outcome(expected) if expected is not None else None,
                   runfile.text(d, "why_expected"), runfile.text(d, "variant"))


def final_outcome(attempts: Iterable[Attempt]) -> Outcome:
    seq = [a.outcome for a in attempts]
    if not seq:
        raise ValueError("no attempts")
    if len(seq) > 1 and seq[-1] is Outcome.PASS and any(o.bad for o in seq[:-1]):
        return Outcome.FLAKY
    return seq[-1]


def compare(outcome: Outcome, expected: Outcome | None) -> Change:
    if expected is None:
        return Change.NEW
    if outcome is expected:
        return Change.SAME
    if outcome.bad and not expected.bad:
        return Change.REGRESSION
    if expected.bad and outcome is Outcome.PASS:
        return Change.IMPROVEMENT
    return Change.CHANGED


@dataclass(frozen=True)
class Expectations:
    source: Path | None
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    why: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Outcome | None:
        return self.outcomes.get(name)


def load_expectations(path: Path, accel: str) -> Expectations:
    """``selftests/expected/<series>.toml``: one table per accelerator."""
    if not path.exists():
        return Expectations(None)
    data = tomllib.loads(path.read_text())
    table = data.get(accel, {})
    outcomes: dict[str, Outcome] = {}
    why: dict[str, str] = {}
    for name, value in table.items():
        if isinstance(value, str):
            outcomes[name] = Outcome(value)
        else:
            outcomes[name] = Outcome(value["outcome"])
            why[name] = value.get("why", "")
    return Expectations(path, outcomes, why)


def split_failed(results: Iterable[TestResult]) -> tuple[list[str], list[str]]:
    """Labels of the failed results: (regressions, failures with no expectation)."""
    bad = failed(results)
    return ([t.label for t in bad if t.change is Change.REGRESSION],
            [t.label for t in bad if t.change is not Change.REGRESSION])


def skip_unmet(results: Iterable[TestResult], unmet: Mapping[str, str]) -> list[TestResult]:
    """Cases that test what this commit does not have yet (``unmet``: case ->
    what it needs, stages.unmet_needs()) skipped, saying so, unless they passed."""
    out = []
    for r in results:
        need = unmet.get(r.name)
        if need is not None and r.outcome.bad:
            last = r.attempts[-1]
            note = f"needs {need!r}, which this commit's generator does not have yet"
            r = replace(r, outcome=Outcome.SKIP, expected=None, why_expected="",
                        attempts=(*r.attempts[:-1], replace(last, outcome=Outcome.SKIP,
                                                            detail=note)))
        out.append(r)
    return out


def failed(results: Iterable[TestResult]) -> list[TestResult]:
    """Results that make the run fail: regressions, or bad outcomes nobody expected."""
    out = []
    for r in results:
        change = r.change
        if change is Change.REGRESSION or (change is Change.NEW and r.outcome.bad):
            out.append(r)
    return out
