from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.bench import (
    BenchResult,
    bootstrap_median,
    bootstrap_ratio,
    compare,
    comparisons,
    format_table,
    fwd_notes,
    junit_tree,
    parse_fwd,
    parse_micro,
    plot,
    rfc_verdict,
    spectre_v2,
)

FWD = """# spectre_v2: Mitigation: Retpolines
BENCH config=none switch=1 rep=1 packets=50000 pps=61000
BENCH config=none switch=0 rep=1 packets=50000 pps=58000
BENCH config=none switch=1 rep=2 packets=50000 pps=60500
BENCH config=none switch=0 rep=2 packets=50000 pps=57000
BENCH config=ct switch=1 rep=1 packets=0 pps=0
"""


def test_parse_fwd_drops_rounds_that_forwarded_nothing() -> None:
    data = parse_fwd(FWD)
    assert data[("none", "1")] == [61000.0, 60500.0]
    assert ("ct", "1") not in data


def test_parse_micro_needs_every_call_to_pass() -> None:
    lines = ["[ 1.0] nf_hook_bench: hooks=5 iters=1000 passed=1000 total_ns=20000",
             "[ 2.0] nf_hook_bench: hooks=5 iters=1000 passed=999 total_ns=20000"]
    assert parse_micro(lines) == [(5, 20.0)]


def test_bootstrap_interval_is_the_seeded_percentiles() -> None:
    """The intervals are reproducible (seeded): pinned, not merely ordered.

    Five values with an outlier: the resampled medians reach from the
    smallest value to the outlier.  Three ratios: the interval spans the
    smallest and largest of them, the median is the ratio of the medians.
    """
    s = bootstrap_median([10.0, 11.0, 12.0, 13.0, 50.0])
    assert (s.median, s.lo, s.hi, s.n) == (12.0, 10.0, 50.0, 5)
    r = bootstrap_ratio([12.0, 12.5, 11.5], [10.0, 10.0, 10.0])
    assert (r.median, r.lo, r.hi, r.n) == pytest.approx((1.2, 1.15, 1.25, 3))


def test_gain_follows_the_measure_direction() -> None:
    assert compare("fwd_pps", "off", "none", [110.0] * 3, [100.0] * 3).gain_percent > 9.9
    assert compare("ns_per_call", "off", "5", [50.0] * 3, [100.0] * 3).gain_percent > 99


def test_table_and_plot(tmp_path: Path) -> None:
    found, missing = comparisons("retpoline", parse_fwd(FWD),
                                 {"1": {5: [20.0, 21.0]}, "0": {5: [30.0, 29.0]}},
                                 configs=("none",), hook_counts=(5,))
    assert missing == []
    res = BenchResult("tcg", found)
    text = format_table(res)
    assert "emulation figures" in text and "retpoline none" in text and "5 hooks" in text
    png = plot(res, tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_points_without_data_are_missing_and_fail_in_junit() -> None:
    found, missing = comparisons("off", parse_fwd(FWD), {"1": {1: [9.0]}, "0": {}},
                                 configs=("none", "ct"), hook_counts=(1,))
    assert [c.point for c in found] == ["none"]
    assert missing == [("fwd_pps", "off", "ct"), ("ns_per_call", "off", "1 hooks")]
    res = BenchResult("kvm", found, missing=missing, metadata={"tree": "debian-6.1.192"})
    assert "MISSING: fwd_pps off ct" in format_table(res)
    root = junit_tree(res).getroot()
    assert root is not None
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "3" and suite.get("failures") == "2"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["off ct", "off 1 hooks"]
    ok = suite.find("testcase")
    assert ok is not None
    ratio = {p.get("name"): p.get("value") for p in ok.iter("property")}["ratio"]
    assert ratio is not None and abs(float(ratio) - 60750 / 57500) < 1e-3


def test_rfc_verdict_places_the_interval() -> None:
    above = compare("fwd_pps", "retpoline", "filter", [130.0] * 4, [100.0] * 4)
    within = compare("fwd_pps", "retpoline", "ct", [108.0] * 4, [100.0] * 4)
    flat = compare("fwd_pps", "off", "none", [100.0] * 4, [100.0] * 4)
    below = compare("fwd_pps", "off", "ct", [80.0] * 4, [100.0] * 4)
    v = rfc_verdict(BenchResult("kvm", [above, within, flat, below]))
    assert [line.split(", ")[-1] for line in v] == [
        "above the RFC's +5% to +13%", "consistent with the RFC's +5% to +13%",
        "consistent with the RFC's about 0%", "below the RFC's about 0%"]


def test_spectre_v2_line() -> None:
    assert spectre_v2(FWD) == "Mitigation: Retpolines"
    assert spectre_v2("BENCH x") == "unknown"


def test_ruleset_notes_reach_the_table() -> None:
    out = FWD + "# flowtable: 0 packets took the forward path after offload\n"
    assert fwd_notes(out) == ["flowtable: 0 packets took the forward path after offload"]
    res = BenchResult("tcg", raw={"off": {"fwd_output": out, "spectre_v2": "Vulnerable"}})
    text = format_table(res)
    assert "rulesets (retpolines off, spectre_v2: Vulnerable):" in text
    assert "    flowtable: 0 packets took the forward path after offload" in text


def test_a_retpoline_run_without_retpolines_is_called_out() -> None:
    res = BenchResult("tcg", raw={"retpoline": {"fwd_output": "", "spectre_v2": "Vulnerable"}})
    assert "WARNING: retpolines were asked for but the guest kernel says 'Vulnerable'" \
        in format_table(res)
    ok = BenchResult("tcg", raw={"retpoline": {"fwd_output": "",
                                               "spectre_v2": "Mitigation: Retpolines"}})
    assert "WARNING" not in format_table(ok)
