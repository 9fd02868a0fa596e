"""Guest-check cases that test what a later patch adds are skipped, not
failed, at a commit without it (check --boot, bisect, test --rev)."""

from __future__ import annotations

from pathlib import Path

from patchgen import results, stages
from patchgen.results import Attempt, Outcome, TestResult
from patchgen.series import generate

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "fakenet"


def _result(name: str, outcome: Outcome) -> TestResult:
    return TestResult(name, outcome, (Attempt(outcome, 1.0, 1, "out"),))


def test_a_case_whose_feature_is_missing_is_skipped_and_says_why() -> None:
    needs = {"checks.sh:shared": "struct cache_entry"}
    unmet = stages.unmet_needs(needs, "static int gen(void);\n")
    assert unmet == {"checks.sh:shared": "struct cache_entry"}
    got = results.skip_unmet([_result("checks.sh:shared", Outcome.FAIL),
                              _result("checks.sh:exists", Outcome.FAIL)], unmet)
    assert [r.outcome for r in got] == [Outcome.SKIP, Outcome.FAIL]
    assert "struct cache_entry" in got[0].attempts[-1].detail
    assert not results.failed(got[:1])


def test_a_case_whose_feature_is_there_keeps_its_result() -> None:
    needs = {"checks.sh:shared": "struct cache_entry"}
    assert stages.unmet_needs(needs, "struct cache_entry {\n};\n") == {}
    assert stages.unmet_needs(needs, None) == needs  # no generator at all


def test_the_series_names_what_its_sharing_checks_need() -> None:
    """programs_shared and netns_sharing test patch 9's cache: at patch 6
    (check --boot on 6.1) they failed for want of it."""
    runtime = generate.load_spec(ROOT / "templates").runtime
    assert {"nf_hook_bpf.sh:programs_shared",
            "selftest/nf_hook_bpf.sh:netns_sharing"} <= set(runtime.needs)
    added_by_6 = (GOLDEN / "06-bpf-hook-generator.golden.txt").read_text()
    added_by_9 = (GOLDEN / "09-prog-cache.golden.txt").read_text()
    for marker in runtime.needs.values():
        assert marker not in added_by_6
        assert marker in added_by_9


def test_the_boot_column_counts_skipped_cases_apart() -> None:
    """check --boot at patch 6 printed 25/25 with two cases skipped for want
    of patch 9: passed/run must not count them as passed."""
    from patchgen.check import BootCheck

    tests = [_result("a", Outcome.PASS), _result("b", Outcome.PASS),
             _result("c", Outcome.SKIP)]
    assert BootCheck("ok", 1.0, "1", tests).cell() == "2/2 +1s"
    assert BootCheck("ok", 1.0, "1", tests[:2]).cell() == "2/2"
