"""How many attempts a test gets, and what the attempts add up to."""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, cast

import pytest

from patchgen import kselftest
from patchgen.kselftest import TestPlan, Variant, load_catalogue
from patchgen.progress import Progress
from patchgen.results import Attempt, Expectations, Outcome, TestResult
from patchgen.settings import PROJECT_ROOT


def test_a_racy_test_gets_its_own_attempts_and_zero_still_means_none() -> None:
    plan = TestPlan("racy.sh", 120, retries=3)
    assert [plan.retries_under(n) for n in (0, 1, 5)] == [0, 3, 5]
    assert [TestPlan("x.sh", 60).retries_under(n) for n in (0, 1, 2)] == [0, 1, 2]


def test_the_catalogue_gives_the_old_conntrack_helper_script_three_retries() -> None:
    cat = load_catalogue(PROJECT_ROOT / "selftests" / "kselftests.toml")
    assert cat.plan("nft_conntrack_helper.sh").retries == 3
    assert cat.plan("nft_meta.sh").retries == 0


def _scripted(monkeypatch: pytest.MonkeyPatch, outcomes: list[Outcome]) -> list[int]:
    calls: list[int] = []
    queue: Iterator[Outcome] = iter(outcomes)

    def run_one(sess: Any, plan: TestPlan) -> Attempt:
        calls.append(1)
        return Attempt(next(queue), 1.0, 0, "")

    monkeypatch.setattr(kselftest, "run_one", run_one)
    return calls


def _run(plan: TestPlan, retries: int) -> TestResult:
    return kselftest._run_with_retries(
        cast(Any, None), plan, Variant("nf_hook_bpf=1"),
        Expectations(None, {plan.name: Outcome.PASS}),
        Progress(stream=io.StringIO(), quiet=True), retries, "[1/1]")


def test_pass_on_the_fourth_attempt_is_flaky(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, [Outcome.TIMEOUT] * 3 + [Outcome.PASS])
    result = _run(TestPlan("racy.sh", 120, retries=3), retries=1)
    assert len(calls) == 4 and result.outcome is Outcome.FLAKY


def test_a_real_breakage_fails_every_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, [Outcome.TIMEOUT] * 10)
    result = _run(TestPlan("racy.sh", 120, retries=3), retries=1)
    assert len(calls) == 4 and result.outcome is Outcome.TIMEOUT
    assert [a.outcome for a in result.attempts] == [Outcome.TIMEOUT] * 4


def test_other_tests_keep_the_run_s_retry_count(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _scripted(monkeypatch, [Outcome.FAIL] * 10)
    assert _run(TestPlan("x.sh", 60), retries=1).outcome is Outcome.FAIL
    assert len(calls) == 2
