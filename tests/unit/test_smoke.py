"""The smoke set of one build: what runs, and what one test's result is."""

from __future__ import annotations

from patchgen import smoke
from patchgen.results import Attempt, Outcome, TestResult
from patchgen.series.context import Runtime

RUNTIME = Runtime("net.netfilter.nf_hook_bpf", "net/netfilter/nf_hook_bpf.c", "NF_HOOK_BPF",
                  "nf_hook_bpf.sh", "nf_hook_bpf.sh", "nf_hook_bpf_helper", "NF_HOOK_BPF_HELPER")


def _r(name: str, outcome: Outcome, expected: Outcome | None = Outcome.PASS) -> TestResult:
    return TestResult(name, outcome, (Attempt(outcome, 1.0, 0, ""),), expected)


def test_a_test_name_is_a_kselftest_unless_it_names_one_of_our_scripts() -> None:
    assert smoke.for_test("nft_meta.sh", RUNTIME) == smoke.Selection("nft_meta.sh", ())
    # Our scripts, by the names their results carry (series.toml [runtime]).
    assert smoke.for_test("selftest/nf_hook_bpf.sh:drop_errno", RUNTIME) == \
        smoke.Selection(None, ("selftest/nf_hook_bpf.sh",))
    assert smoke.for_test("nf_hook_bpf.sh", RUNTIME) == smoke.Selection(None, ("nf_hook_bpf.sh",))
    assert smoke.for_test("nf_hook_bpf.sh:churn", RUNTIME).scripts == ("nf_hook_bpf.sh",)


def test_the_smoke_set_is_the_quick_tier_and_every_script_the_commit_has() -> None:
    assert smoke.Selection("quick", None) == smoke.SMOKE
    assert smoke.SMOKE.wants_script("selftest/nf_hook_bpf.sh")
    one = smoke.for_test("selftest/nf_hook_bpf.sh:kallsyms", RUNTIME)
    assert one.wants_script("selftest/nf_hook_bpf.sh")
    assert not one.wants_script("nf_hook_bpf.sh")


def test_outcome_of_one_test_a_whole_script_or_one_case() -> None:
    done = smoke.Smoke([_r("nft_meta.sh", Outcome.PASS),
                        _r("nf_hook_bpf.sh:dump", Outcome.PASS),
                        _r("nf_hook_bpf.sh:churn", Outcome.FAIL),
                        _r("selftest/nf_hook_bpf.sh:kallsyms", Outcome.FLAKY)], [])
    assert done.outcome_of("nft_meta.sh") == "pass"
    assert done.outcome_of("nf_hook_bpf.sh:dump") == "pass"
    assert done.outcome_of("nf_hook_bpf.sh") == "fail"  # the worst of its cases
    # A flaky pass is a pass for the search; the step still says flaky.
    assert done.outcome_of("selftest/nf_hook_bpf.sh:kallsyms") == "pass"
    assert done.outcome_of("nft_queue.sh") == "not run"
    broken = smoke.Smoke([], [], error="guest did not boot: kernel panic")
    assert broken.outcome_of("nft_meta.sh") == "no boot"


def test_verdict_counts_failures_against_the_expectations() -> None:
    ok = smoke.Smoke([_r("a.sh", Outcome.PASS), _r("b.sh", Outcome.FAIL, Outcome.FAIL)],
                     [{"switch_default": "1"}])
    assert ok.status == "ok" and ok.failed == [] and ok.switch_default == "1"
    bad = smoke.Smoke([_r("a.sh", Outcome.PASS), _r("c.sh", Outcome.CRASH)], [])
    assert bad.status == "fail" and [t.name for t in bad.failed] == ["c.sh"]
    assert bad.switch_default is None
    assert smoke.Smoke([], [], error="no SSH").status == "no boot"
    # Died after some tests ran: those results stand, the run is not ok.
    assert smoke.Smoke([_r("a.sh", Outcome.PASS)], [], error="guest died").status == "no boot"
