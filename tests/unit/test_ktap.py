from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchgen import ktap
from tests.helpers import ktap_summary

DATA = Path(__file__).parent.parent / "data" / "ktap"
CASES = sorted(p.stem for p in DATA.glob("*.log"))


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    doc = ktap.parse((DATA / f"{case}.log").read_text().splitlines())
    expected = json.loads((DATA / f"{case}.expected.json").read_text())
    assert ktap_summary(doc) == expected


def test_cases_cover_every_status_the_runner_prints() -> None:
    seen = set()
    for case in CASES:
        doc = ktap.parse((DATA / f"{case}.log").read_text().splitlines())
        seen.add(doc.status)
    assert {ktap.TestStatus.SUCCESS, ktap.TestStatus.FAILURE, ktap.TestStatus.SKIPPED,
            ktap.TestStatus.TIMEOUT, ktap.TestStatus.CRASHED,
            ktap.TestStatus.FAILURE_TO_PARSE} <= seen


def test_output_lines_belong_to_the_following_result() -> None:
    doc = ktap.parse((DATA / "kselftest_fail_exit.log").read_text().splitlines())
    (test,) = doc.subtests
    assert "# Error: syntax error, unexpected reset" in test.log


@pytest.mark.parametrize(("ok", "directive", "status"), [
    (True, "", ktap.TestStatus.SUCCESS),
    (False, "exit=1", ktap.TestStatus.FAILURE),
    (True, "SKIP", ktap.TestStatus.SKIPPED),
    (False, "SKIP missing tool", ktap.TestStatus.SKIPPED),
    (False, "TIMEOUT 300 seconds", ktap.TestStatus.TIMEOUT),
    (False, "TODO not done", ktap.TestStatus.SUCCESS),
])
def test_status_of(ok: bool, directive: str, status: ktap.TestStatus) -> None:
    assert ktap.status_of(ok, directive) is status


def test_counts_precedence() -> None:
    counts = ktap.TestCounts()
    for status in (ktap.TestStatus.SKIPPED, ktap.TestStatus.SUCCESS):
        counts.add(status)
    assert counts.status() is ktap.TestStatus.SUCCESS
    counts.add(ktap.TestStatus.FAILURE)
    assert counts.status() is ktap.TestStatus.FAILURE
    counts.add(ktap.TestStatus.TIMEOUT)
    assert counts.status() is ktap.TestStatus.TIMEOUT
    counts.add(ktap.TestStatus.CRASHED)
    assert counts.status() is ktap.TestStatus.CRASHED
    assert counts.total() == 5
