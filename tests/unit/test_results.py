from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.results import (
    Attempt,
    Change,
    Outcome,
    TestResult,
    compare,
    failed,
    final_outcome,
    load_expectations,
)


def att(o: Outcome) -> Attempt:
    return Attempt(o, 1.0, 0, "")


def test_fail_then_pass_is_flaky_not_pass() -> None:
    assert final_outcome([att(Outcome.FAIL), att(Outcome.PASS)]) is Outcome.FLAKY
    assert final_outcome([att(Outcome.TIMEOUT), att(Outcome.PASS)]) is Outcome.FLAKY


def test_fail_twice_is_fail() -> None:
    assert final_outcome([att(Outcome.FAIL), att(Outcome.FAIL)]) is Outcome.FAIL


def test_no_attempts_is_an_error() -> None:
    with pytest.raises(ValueError):
        final_outcome([])


@pytest.mark.parametrize(("got", "want", "change"), [
    (Outcome.PASS, Outcome.PASS, Change.SAME),
    (Outcome.FAIL, Outcome.PASS, Change.REGRESSION),
    (Outcome.CRASH, Outcome.SKIP, Change.REGRESSION),
    (Outcome.PASS, Outcome.FAIL, Change.IMPROVEMENT),
    (Outcome.FLAKY, Outcome.PASS, Change.CHANGED),
    (Outcome.FAIL, None, Change.NEW),
])
def test_compare(got: Outcome, want: Outcome | None, change: Change) -> None:
    assert compare(got, want) is change


def test_failed_counts_regressions_and_unexpected_failures() -> None:
    results = [
        TestResult("a", Outcome.FAIL, (att(Outcome.FAIL),), Outcome.FAIL),  # known failure
        TestResult("b", Outcome.FAIL, (att(Outcome.FAIL),), Outcome.PASS),  # regression
        TestResult("c", Outcome.TIMEOUT, (att(Outcome.TIMEOUT),), None),  # nobody expected
        TestResult("d", Outcome.PASS, (att(Outcome.PASS),), None),
    ]
    assert [r.name for r in failed(results)] == ["b", "c"]


def test_load_expectations(tmp_path: Path) -> None:
    f = tmp_path / "6.1.toml"
    f.write_text('[tcg]\n"a.sh" = "pass"\n"b.sh" = { outcome = "fail", why = "old nft" }\n'
                 '[kvm]\n"a.sh" = "skip"\n')
    tcg = load_expectations(f, "tcg")
    assert tcg.get("a.sh") is Outcome.PASS
    assert tcg.get("b.sh") is Outcome.FAIL
    assert tcg.why["b.sh"] == "old nft"
    assert load_expectations(f, "kvm").get("a.sh") is Outcome.SKIP
    assert load_expectations(tmp_path / "missing.toml", "tcg").source is None
