"""A KTAP / TAP-13 parser that builds a tree of typed results.

The kselftest runner prints one TAP document per run; each test's own
output follows as ``# ``-prefixed lines before its result line, and that
output may itself be a nested (K)TAP document.  Parsing keeps going on
malformed input: problems are recorded on the node, never raised.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_HEADER = re.compile(r"^\s*(?:K?TAP version \d+)\s*$")
_PLAN = re.compile(r"^\s*1\.\.(?P<count>\d+)")
_RESULT = re.compile(r"^\s*(?P<ok>ok|not ok)\s+(?P<num>\d+)\s*(?:-\s*)?(?P<rest>.*)$")
# A "#" starts a directive only before a known word; elsewhere it is part of
# the description.
_DIRECTIVE = re.compile(r"\s*#\s*(?=(?:SKIP|TODO|TIMEOUT|XFAIL|exit=))", re.I)
_BAIL = re.compile(r"^\s*Bail out!")


class TestStatus(enum.Enum):
    __test__ = False  # not a pytest test class

    SUCCESS = "pass"
    FAILURE = "fail"
    SKIPPED = "skip"
    TIMEOUT = "timeout"
    CRASHED = "crash"
    NO_TESTS = "no-tests"
    FAILURE_TO_PARSE = "unparsed"


@dataclass
class TestCounts:
    __test__ = False  # not a pytest test class

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    timeout: int = 0
    crashed: int = 0
    errors: int = 0

    def add(self, status: TestStatus) -> None:
        match status:
            case TestStatus.SUCCESS:
                self.passed += 1
            case TestStatus.FAILURE:
                self.failed += 1
            case TestStatus.SKIPPED:
                self.skipped += 1
            case TestStatus.TIMEOUT:
                self.timeout += 1
            case TestStatus.CRASHED:
                self.crashed += 1
            case _:
                self.errors += 1

    def total(self) -> int:
        return (self.passed + self.failed + self.skipped + self.timeout + self.crashed
                + self.errors)

    def status(self) -> TestStatus:
        """Worst wins: crash > parse error > timeout > failure > pass > skip."""
        if self.crashed:
            return TestStatus.CRASHED
        if self.errors:
            return TestStatus.FAILURE_TO_PARSE
        if self.timeout:
            return TestStatus.TIMEOUT
        if self.failed:
            return TestStatus.FAILURE
        if self.passed:
            return TestStatus.SUCCESS
        if self.skipped:
            return TestStatus.SKIPPED
        return TestStatus.NO_TESTS


@dataclass
class Test:
    __test__ = False  # not a pytest test class

    name: str = ""
    number: int = 0
    status: TestStatus = TestStatus.NO_TESTS
    directive: str = ""
    expected_count: int | None = None
    subtests: list[Test] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def counts(self) -> TestCounts:
        counts = TestCounts()
        for sub in self.subtests:
            counts.add(sub.status)
        return counts


def status_of(ok: bool, directive: str) -> TestStatus:
    word = directive.strip().split(" ", 1)[0].upper() if directive else ""
    if word == "SKIP":
        return TestStatus.SKIPPED
    if word == "TIMEOUT":
        return TestStatus.TIMEOUT
    if ok or word in ("TODO", "XFAIL"):
        return TestStatus.SUCCESS
    return TestStatus.FAILURE


def _strip_prefix(line: str) -> str | None:
    """A line of nested output: "# text" -> "text"; None if not nested."""
    if line.startswith("# "):
        return line[2:]
    if line == "#":
        return ""
    return None


def parse(lines: Iterable[str], name: str = "") -> Test:
    """Parse a (K)TAP document; returns a root node whose subtests are the results."""
    root = Test(name=name)
    pending: list[str] = []
    seen_header = False
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not seen_header and _HEADER.match(line):
            seen_header = True
            continue
        if (m := _PLAN.match(line)) and root.expected_count is None and not pending:
            root.expected_count = int(m["count"])
            continue
        if m := _RESULT.match(line):
            root.subtests.append(_result(m, pending))
            pending = []
            continue
        if _BAIL.match(line):
            root.errors.append(line.strip())
            continue
        pending.append(line)
    root.log = pending
    _finish(root, seen_header)
    return root


def split_directive(rest: str) -> tuple[str, str]:
    m = _DIRECTIVE.search(rest)
    if m is None:
        return rest.strip(), ""
    return rest[:m.start()].strip(), rest[m.end():].strip()


def _result(m: re.Match[str], output: list[str]) -> Test:
    desc, directive = split_directive(m["rest"])
    test = Test(name=desc, number=int(m["num"]),
                status=status_of(m["ok"] == "ok", directive), directive=directive, log=output)
    nested = [s for s in (_strip_prefix(line) for line in output) if s is not None]
    if any(_HEADER.match(line) for line in nested):
        inner = parse(nested)
        test.subtests = inner.subtests
        test.expected_count = inner.expected_count
        test.errors.extend(inner.errors)
    return test


def _finish(root: Test, seen_header: bool) -> None:
    if not seen_header and not root.subtests:
        root.status = TestStatus.FAILURE_TO_PARSE
        root.errors.append("no TAP header and no results")
        return
    if root.expected_count is not None and root.expected_count != len(root.subtests):
        root.errors.append(f"plan says {root.expected_count} tests, found {len(root.subtests)}")
    numbers = [t.number for t in root.subtests]
    if numbers != list(range(1, len(numbers) + 1)):
        root.errors.append(f"test numbers out of order: {numbers}")
    root.status = root.counts().status()
    missing = (root.expected_count or 0) - len(root.subtests)
    if missing > 0 and root.status in (TestStatus.SUCCESS, TestStatus.SKIPPED,
                                       TestStatus.NO_TESTS):
        # The document stopped early: something died mid-run.
        root.status = TestStatus.CRASHED
