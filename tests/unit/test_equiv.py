from __future__ import annotations

from pathlib import Path

from patchgen import equiv
from patchgen.results import Outcome

SAMPLE = (Path(__file__).parent.parent / "data" / "equiv" / "sample.txt").read_text()


def test_parse_observables_and_failed_setups() -> None:
    obs, failed = equiv.parse(SAMPLE)
    assert obs["nft_hooks"] == {"forwarded4": "4", "counter_fwd4": "4"}
    assert obs["nat"]["dnat_reply"] == "hello"
    assert failed == {"ipvs": "exit=1"}


def test_equal_observables_pass_and_show_the_table() -> None:
    obs, _ = equiv.parse(SAMPLE)
    outcome, text = equiv.compare("nft_hooks", {"unpatched": obs, "nf_hook_bpf=1": obs})
    assert outcome is Outcome.PASS
    assert "forwarded4: 4 | 4" in text


def test_a_difference_fails_and_shows_both_values() -> None:
    obs, _ = equiv.parse(SAMPLE)
    other = {**obs, "nft_hooks": {"forwarded4": "3", "counter_fwd4": "4"}}
    outcome, text = equiv.compare("nft_hooks", {"nf_hook_bpf=1": other, "nf_hook_bpf=0": obs})
    assert outcome is Outcome.FAIL
    assert "≠ forwarded4: 3 | 4" in text


def test_empty_or_zero_observables_are_not_equivalence() -> None:
    zero = {"c": {"a": "0", "b": ""}}
    outcome, text = equiv.compare("c", {"x": zero, "y": zero})
    assert outcome is Outcome.FAIL and text.startswith("no meaningful observables")


def test_a_column_that_went_blank_is_named() -> None:
    seen = {"nat": {"reply": "hello", "conns": "2"}}
    blank = {"nat": {"reply": "", "conns": "0"}}
    outcome, text = equiv.compare("nat", {"unpatched": seen, "nf_hook_bpf=1": blank,
                                          "nf_hook_bpf=0": seen})
    assert outcome is Outcome.FAIL
    assert text.startswith("observables differ; nothing observed with nf_hook_bpf=1")
    assert "≠ reply: hello |  | hello" in text


def test_results_name_cases_and_keep_setup_failures() -> None:
    obs, failed = equiv.parse(SAMPLE)
    res = equiv.results({"nf_hook_bpf=1": obs, "nf_hook_bpf=0": obs}, failed, 9.0,
                        sorted(obs))
    by = {r.name: r for r in res}
    assert by["equiv:nat"].outcome is Outcome.PASS
    assert by["equiv:ipvs"].outcome is Outcome.FAIL
    assert "setup failed" in by["equiv:ipvs"].attempts[0].output
