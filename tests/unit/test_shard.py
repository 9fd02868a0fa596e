"""Sharding a test run: --shard i/N, stable assignment by measured duration."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen import kselftest, shard
from patchgen.errors import UserError
from patchgen.kselftest import NO_VARIANT, ScriptPlan, TestPlan, Variant
from patchgen.results import Attempt, Outcome, TestResult

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "index", "count"), [("1/2", 1, 2), ("2/2", 2, 2),
                                                      (" 3/7 ", 3, 7), ("1/1", 1, 1)])
def test_parse(text: str, index: int, count: int) -> None:
    s = shard.parse(text)
    assert (s.index, s.count) == (index, count)
    assert str(s) == f"{index}/{count}"


@pytest.mark.parametrize(("text", "says"), [
    ("0/2", "shard 0/2: i counts from 1"),
    ("3/2", "shard 3/2: there are only 2 shards"),
    ("1/0", "shard 1/0: N must be 1 or more"),
    ("junk", "--shard takes i/N"),
    ("1/2/3", "--shard takes i/N"),
    ("a/b", "--shard takes i/N"),
    ("-1/2", "--shard takes i/N"),
    ("", "--shard takes i/N"),
])
def test_parse_refuses(text: str, says: str) -> None:
    with pytest.raises(UserError) as info:
        shard.parse(text)
    assert says in info.value.message


def test_work_keys_in_serial_order() -> None:
    variants = (Variant("nf_hook_bpf=1", {"s": "1"}), Variant("nf_hook_bpf=0", {"s": "0"}))
    plans = [TestPlan("a.sh", 60), TestPlan("b.sh", 60)]
    scripts = (ScriptPlan(Path("/s/nf_hook_bpf.sh"), 60),
               ScriptPlan(Path("/t/x.sh"), 60, label="selftest/x.sh"))
    keys = kselftest.work_keys(plans, variants, scripts, equiv=True)
    assert keys == ["1/a.sh", "1/b.sh", "0/a.sh", "0/b.sh", "script:nf_hook_bpf.sh",
                    "script:selftest/x.sh", "equiv"]
    assert kselftest.work_keys(plans[:1], (NO_VARIANT,), (), equiv=False) == ["a.sh"]
    assert shard.EQUIV_KEY in keys and all(
        k.startswith(shard.SCRIPT_PREFIX) for k in keys if "nf_hook_bpf" in k or "x.sh" in k)


def test_assign_longest_first_to_the_least_loaded() -> None:
    d = shard.Durations(None, {"a": 100.0, "b": 60.0, "c": 50.0, "d": 10.0}, default=30.0)
    # LPT: a->1 (100), b->2 (60), c->2 (110), d->1 (110); each shard in input order
    assert shard.assign(["a", "b", "c", "d"], d, 2) == [["a", "d"], ["b", "c"]]


def test_assign_is_stable_and_ties_go_by_key() -> None:
    d = shard.Durations(None, {}, default=30.0)  # nothing measured: all the default
    keys = ["1/z.sh", "1/a.sh", "0/z.sh", "0/a.sh", "equiv"]
    first = shard.assign(keys, d, 2)
    assert first == shard.assign(list(keys), d, 2)
    # ties by key: 0/a.sh, 0/z.sh, 1/a.sh, 1/z.sh, equiv dealt 1,2,1,2,1
    assert first == [["1/a.sh", "0/a.sh", "equiv"], ["1/z.sh", "0/z.sh"]]


def test_assign_covers_every_key_once_with_empty_shards_allowed() -> None:
    d = shard.Durations(None, {"a": 5.0}, default=1.0)
    parts = shard.assign(["a", "b"], d, 4)
    assert parts == [["a"], ["b"], [], []]
    assert shard.assign([], d, 2) == [[], []]


def test_assign_refuses_a_key_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        shard.assign(["a", "a"], shard.Durations(None, {}, 1.0), 2)


def test_durations_file_per_accelerator(tmp_path: Path) -> None:
    f = tmp_path / "6.1.toml"
    f.write_text('default = 40\n[tcg]\n"1/a.sh" = 12.5\nequiv = 250\n[kvm]\n"1/a.sh" = 2\n')
    d = shard.load_durations(f, "tcg")
    assert d.source == f and d.default == 40.0
    assert d.get("1/a.sh") == 12.5 and d.get("equiv") == 250.0 and d.get("nope") == 40.0
    assert shard.load_durations(f, "kvm").get("1/a.sh") == 2.0
    missing = shard.load_durations(tmp_path / "none.toml", "tcg")
    assert missing.source is None and missing.get("x") == shard.DEFAULT_SECONDS


@pytest.mark.parametrize("series", ["6.1", "6.12"])
def test_recorded_durations_cover_the_quick_tier(series: str) -> None:
    d = shard.load_durations(ROOT / "selftests" / "durations" / f"{series}.toml", "tcg")
    assert d.source is not None
    for key in ("1/nft_meta.sh", "0/nft_queue.sh", "script:nf_hook_bpf.sh", "equiv"):
        assert key in d.seconds


def _r(name: str, seconds: float, variant: str = "") -> TestResult:
    return TestResult(name, Outcome.PASS, (Attempt(Outcome.PASS, seconds, 0, ""),),
                      variant=variant)


ALL = ["1/a.sh", "0/a.sh", "script:nf_hook_bpf.sh", "script:selftest/x.sh", "equiv"]


def test_result_key() -> None:
    assert shard.result_key(_r("a.sh", 1, "nf_hook_bpf=1"), ALL) == "1/a.sh"
    assert shard.result_key(_r("nf_hook_bpf.sh:dump", 1), ALL) == "script:nf_hook_bpf.sh"
    assert shard.result_key(_r("selftest/x.sh:kallsyms", 1), ALL) == "script:selftest/x.sh"
    assert shard.result_key(_r("selftest/x.sh", 1), ALL) == "script:selftest/x.sh"
    assert shard.result_key(_r("equiv:nat", 1), ALL) == "equiv"
    assert shard.result_key(_r("equiv [nf_hook_bpf=0]", 1), ALL) == "equiv"
    assert shard.result_key(_r("a.sh", 1), ["a.sh"]) == "a.sh"
    with pytest.raises(ValueError, match=r"b\.sh \[nf_hook_bpf=1\]"):
        shard.result_key(_r("b.sh", 1, "nf_hook_bpf=1"), ALL)


def test_measured_sums_the_results_of_a_key() -> None:
    tests = [_r("a.sh", 7.5, "nf_hook_bpf=1"), _r("nf_hook_bpf.sh:dump", 2),
             _r("nf_hook_bpf.sh:churn", 3), _r("equiv:nat", 1), _r("equiv:bridge", 1)]
    assert shard.measured(tests, ALL) == {"1/a.sh": 7.5, "script:nf_hook_bpf.sh": 5.0,
                                          "equiv": 2.0}


def test_shard_info_round_trip() -> None:
    info = shard.ShardInfo(shard.Shard(2, 3), ("b",), ("a", "b", "c"), "selftests/durations/x")
    assert shard.ShardInfo.from_dict(info.as_dict()) == info
    assert info.as_dict()["shard"] == "2/3"


def test_run_tests_runs_only_the_wanted_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    from collections.abc import Iterator
    from typing import Any, cast

    from patchgen import kselftest
    from patchgen.kselftest import Installed, TestPlan, Variant
    from patchgen.progress import Progress
    from patchgen.results import Expectations

    ran: list[tuple[str, str]] = []

    def run_one(sess: Any, plan: TestPlan) -> Attempt:
        ran.append((sess.variant.name, plan.name))
        return Attempt(Outcome.PASS, 1.0, 0, "")

    @contextlib.contextmanager
    def boot(lane: Any) -> Iterator[Any]:
        raise AssertionError("nothing to run: no guest")
        yield

    monkeypatch.setattr(kselftest, "run_one", run_one)
    monkeypatch.setattr(kselftest._Session, "_apply", lambda self, guest: None)
    variants = (Variant("nf_hook_bpf=1", {"s": "1"}), Variant("nf_hook_bpf=0", {"s": "0"}))
    plans = [TestPlan("a.sh", 60), TestPlan("b.sh", 60)]
    keep = {"1/b.sh", "0/a.sh"}
    out = kselftest.run_tests(cast(Any, boot), Installed(Path("/x"), "netfilter", ("a.sh",)),
                              plans, Expectations(None), Progress(stream=io.StringIO()),
                              variants=variants, only=keep).results
    assert ran == [("nf_hook_bpf=1", "b.sh"), ("nf_hook_bpf=0", "a.sh")]
    assert [t.label for t in out] == ["b.sh [nf_hook_bpf=1]", "a.sh [nf_hook_bpf=0]"]
    ran.clear()
    none = kselftest.run_tests(cast(Any, boot), Installed(Path("/x"), "netfilter", ("a.sh",)),
                               plans, Expectations(None), Progress(stream=io.StringIO()),
                               variants=variants, only=set()).results
    assert none == [] and ran == []


def test_a_shard_is_part_of_the_request_and_its_reproducer() -> None:
    from patchgen.commands.test import TestRequest
    from patchgen.tree import TreeRequest

    req = TestRequest(tree=TreeRequest(), tests="quick", shard="2/3")
    assert req.reproducer().endswith("--shard 2/3")
    assert "--shard" not in TestRequest(tree=TreeRequest()).reproducer()
    with pytest.raises(UserError, match="there are only 2 shards"):
        TestRequest(tree=TreeRequest(), shard="3/2")


def test_the_cli_takes_shard() -> None:
    from patchgen.cli import build_parser, test_request

    ns = build_parser().parse_args(["test", "--shard", "1/2", "--tests", "quick"])
    assert test_request(ns, None).shard == "1/2"
    assert build_parser().parse_args(["test"]).shard is None


def test_split_of_a_run() -> None:
    from patchgen.commands.test import split
    from patchgen.kselftest import NO_VARIANT, ScriptPlan, TestPlan, Variant

    variants = (Variant("nf_hook_bpf=1", {"net.netfilter.nf_hook_bpf": "1"}),
                Variant("nf_hook_bpf=0", {"net.netfilter.nf_hook_bpf": "0"}))
    plans = [TestPlan("a.sh", 60), TestPlan("b.sh", 60)]
    scripts = (ScriptPlan(Path("/s/nf_hook_bpf.sh"), 60),
               ScriptPlan(Path("/t/nf_hook_bpf.sh"), 60, label="selftest/nf_hook_bpf.sh"))
    d = shard.Durations(Path("d.toml"), {"equiv": 500.0, "1/a.sh": 100.0}, 10.0)
    keys = kselftest.work_keys(plans, variants, scripts, True)
    assert split(None, keys, d) is None
    info = split("1/2", keys, d)
    assert info is not None
    assert info.all_keys == ("1/a.sh", "1/b.sh", "0/a.sh", "0/b.sh", "script:nf_hook_bpf.sh",
                             "script:selftest/nf_hook_bpf.sh", "equiv")
    assert info.keys == ("equiv",)
    assert info.durations == "d.toml"
    other = split("2/2", keys, d)
    assert other is not None and "equiv" not in other.keys and len(other.keys) == 6
    plain = split("1/1", kselftest.work_keys(plans, (NO_VARIANT,), (), False), d)
    assert plain is not None and plain.keys == ("a.sh", "b.sh")
