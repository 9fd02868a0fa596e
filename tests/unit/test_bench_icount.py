"""The deterministic (icount) bench: parsing, paired statistics, derived
indirect calls, the cost model, control-plane figures, run-to-run spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchgen.bench import (
    BenchResult,
    CostModel,
    compare,
    compare_runs,
    format_table,
    indirect_calls,
    modeled_gain,
    needed_penalty,
    paired,
    parse_ctl,
    parse_ctl_script,
    parse_fwd_insns,
    parse_module_run,
    plot,
    thunk_cost,
)

LOG = """[ 1.0] nf_hook_bench: calib iters=1000 loop_ns=3000 direct_ns=7000 indirect_ns=11000
[ 1.1] nf_hook_bench: hooks=5 iters=1000 passed=1000 total_ns=90000 fill=0
[ 2.0] nf_hook_bench: calib iters=1000 loop_ns=3000 direct_ns=7000 indirect_ns=11000
[ 2.1] nf_hook_bench: hooks=5 iters=1000 passed=1000 total_ns=80000 fill=64
"""


def test_a_module_run_is_its_last_calibration_and_measurement() -> None:
    run = parse_module_run(LOG.splitlines())
    assert run is not None
    assert (run.hooks, run.fill, run.iters, run.total_ns) == (5, 64, 1000, 80000)
    # per call, less the empty loop the call sits in
    assert run.per_call(icount=True) == 77.0
    assert run.per_call(icount=False) == 80.0
    # what one call through a pointer costs over a direct one: 4 instructions
    assert run.thunk == 4.0


def test_a_module_run_whose_calls_did_not_all_pass_is_no_run() -> None:
    assert parse_module_run(["nf_hook_bench: hooks=5 iters=10 passed=9 total_ns=1 fill=0"]) \
        is None
    assert parse_module_run(["nothing here"]) is None


def test_thunk_cost_is_the_median_of_the_runs() -> None:
    assert thunk_cost([4.0, 4.0, 5.0]) == 4.0
    assert thunk_cost([]) is None


def test_paired_bootstrap_resamples_rounds_not_sides() -> None:
    # Both paths drift together round by round (the host got busier): the
    # ratio is steady, so a paired interval is narrow; resampling each side
    # on its own would mix slow rounds of one with fast rounds of the other.
    slow = [100.0, 120.0, 140.0, 160.0, 180.0, 200.0, 220.0, 240.0]
    bpf = [s * 0.9 for s in slow]
    b, s, r = paired(bpf, slow, icount=False)
    assert r.interval == "95% CI, paired bootstrap by round"
    assert r.lo is not None and r.hi is not None
    assert abs(r.lo - 0.9) < 1e-9 and abs(r.hi - 0.9) < 1e-9
    assert b.n == s.n == r.n == 8


def test_few_rounds_get_no_interval_and_say_so() -> None:
    _b, _s, r = paired([1.0, 2.0, 3.0], [2.0, 2.0, 3.0], icount=False)
    assert r.lo is None and r.hi is None
    assert "3 rounds" in r.interval and "too few" in r.interval
    assert r.text(3) == "1.000 (no interval: 3 rounds are too few)"


def test_icount_reports_the_spread_of_the_rounds() -> None:
    b, _s, r = paired([100.0, 101.0, 100.0], [200.0, 200.0, 202.0], icount=True)
    assert (b.median, b.lo, b.hi) == (100.0, 100.0, 101.0)
    assert b.interval == "spread (min-max)"
    assert r.lo == pytest.approx(100 / 202) and r.hi == pytest.approx(101 / 200)
    assert b.text(0) == "100 [100, 101]"


def _icount_result() -> BenchResult:
    # slow: 20 + 10/hook instructions and one indirect call per hook;
    # bpf: 30 + 8/hook and no indirect call.  Thunk: 4 with retpolines,
    # 0 without.
    res = BenchResult("tcg", mode="icount", calibration={"retpoline": 4.0, "off": 0.0})
    for mitigation, thunk in (("retpoline", 4.0), ("off", 0.0)):
        for hooks in (1, 5):
            slow = 20 + 10 * hooks + thunk * hooks
            bpf = 30 + 8 * hooks
            res.comparisons.append(compare("insns_per_call", mitigation, f"{hooks} hooks",
                                           [bpf] * 3, [slow] * 3, icount=True))
    return res


def test_indirect_calls_come_from_the_on_off_difference_and_the_thunk() -> None:
    rows = {(r.point, r.path): r.calls for r in indirect_calls(_icount_result())}
    assert rows == {("1 hooks", "slow"): 1.0, ("1 hooks", "bpf"): 0.0,
                    ("5 hooks", "slow"): 5.0, ("5 hooks", "bpf"): 0.0}


def test_no_indirect_calls_without_a_thunk_difference() -> None:
    res = _icount_result()
    res.calibration = {"retpoline": 4.0}
    assert indirect_calls(res) == []


def test_cost_model_cycles_and_what_the_rfc_needs() -> None:
    m = CostModel(cpi=1.0, penalty=20.0)
    assert m.cycles(100.0, 2.0) == 140.0
    # slow 100 insns + 5 indirect; bpf 110 insns + 0 indirect
    assert modeled_gain(m, slow=(100.0, 5.0), bpf=(110.0, 0.0)) == pytest.approx(200 / 110 - 1)
    # +5 %: 100 + 5 P = 1.05 * 110  ->  P = 3.1
    assert needed_penalty(m, slow=(100.0, 5.0), bpf=(110.0, 0.0), gain=0.05) == \
        pytest.approx(3.1)
    # no indirect calls saved: no penalty can make up for more instructions
    assert needed_penalty(m, slow=(100.0, 0.0), bpf=(110.0, 0.0), gain=0.05) is None


def test_pktgen_result_gives_instructions_per_packet() -> None:
    out = ("BENCH config=ct switch=1 rep=1 packets=1000 pps=5 ns=2500000\n"
           "BENCH config=ct switch=0 rep=1 packets=1000 pps=5 ns=2600000\n"
           "BENCH config=ct switch=1 rep=2 packets=0 pps=0 ns=0\n")
    assert parse_fwd_insns(out) == {("ct", "1"): [2500.0], ("ct", "0"): [2600.0]}


def test_control_plane_lines() -> None:
    log = ["nf_hook_bench: ctl hooks=10 rounds=20 reg_ns=4000000 unreg_ns=6000000 gp=40"]
    run = parse_ctl(log)
    assert run is not None
    assert (run.hooks, run.register_ns, run.unregister_ns) == (10, 200000.0, 300000.0)
    assert run.grace_periods == 2.0
    script = ("CTL what=netns count=100 programs=7 prog_bytes=28672 ns=123456789\n"
              "CTL what=netns count=1 programs=7 prog_bytes=28672 ns=1234567\n"
              "CTL what=nft_chains count=50 programs=2 prog_bytes=8192 ns=55555\n")
    rows = parse_ctl_script(script)
    assert rows[0] == {"what": "netns", "count": 100, "programs": 7, "prog_bytes": 28672,
                       "ns": 123456789}
    assert len(rows) == 3


def test_two_runs_agree_within_one_percent(tmp_path: Path) -> None:
    a = _icount_result()
    b = _icount_result()
    b.comparisons[0] = compare("insns_per_call", "retpoline", "1 hooks", [38.1] * 3,
                               [34.0] * 3, icount=True)
    rows = compare_runs(*(BenchResult.from_json(json.loads(json.dumps(r.to_json())))
                          for r in (a, b)))
    worst = max(rows, key=lambda r: abs(r.rel))
    assert worst.point == "1 hooks" and worst.path == "bpf"
    assert worst.rel == pytest.approx(0.1 / 38)
    assert all(abs(r.rel) < 0.01 for r in rows)


def test_icount_table_names_its_mode_and_shows_the_derivations(tmp_path: Path) -> None:
    res = _icount_result()
    text = format_table(res, CostModel())
    assert "icount" in text and "instructions" in text
    assert "indirect calls per operation" in text
    assert "cost model" in text and "CPI 1.0" in text and "penalty 20" in text
    png = plot(res, tmp_path / "b.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_control_plane_says_how_much_of_its_time_the_cpus_were_idle() -> None:
    run = parse_ctl(["nf_hook_bench: ctl hooks=10 rounds=20 reg_ns=4000000 unreg_ns=6000000 "
                     "gp=40 idle_ns=15000000 cpus=2"])
    assert run is not None and run.idle_share == 0.75
    bare = parse_ctl(["nf_hook_bench: ctl hooks=1 rounds=1 reg_ns=1 unreg_ns=1 gp=0"])
    assert bare is not None and bare.idle_share is None


def test_timing_mode_follows_the_accelerator() -> None:
    from patchgen.bench import resolve_mode
    from patchgen.errors import UserError
    from patchgen.vm.accel import Accel

    assert resolve_mode("auto", Accel.TCG) == "icount"
    assert resolve_mode("auto", Accel.KVM) == "wall"
    assert resolve_mode("wall", Accel.TCG) == "wall"
    with pytest.raises(UserError, match="TCG"):
        resolve_mode("icount", Accel.KVM)


def test_icount_data_path_boots_have_one_vcpu() -> None:
    # icount counts every vCPU's instructions on one clock: a second vCPU's
    # work would land in the window.
    from patchgen.bench import bench_cpus

    assert bench_cpus("icount", 2) == 1
    assert bench_cpus("wall", 2) == 2


def test_the_base_kernel_has_no_switch_to_set() -> None:
    from patchgen.bench import ctl_positions

    assert ctl_positions(has_switch=True) == ("1", "0")
    assert ctl_positions(has_switch=False) == (None,)


def test_run_diff_names_the_largest_difference_and_the_verdict() -> None:
    from patchgen.bench import RunDiff, format_run_diff

    rows = [RunDiff("insns_per_call", "off", "5 hooks", "bpf", 200.0, 200.0),
            RunDiff("insns_per_packet", "retpoline", "ct", "slow", 10000.0, 10150.0)]
    text = format_run_diff(rows, "run1/bench.json")
    assert text.splitlines()[0] == (
        "run-to-run against run1/bench.json: largest difference +1.500% "
        "(retpoline ct, slow); NOT all within 1%")
    assert "all within 1%" in format_run_diff(rows[:1], "x")
    assert format_run_diff([], "x") == "run-to-run: nothing in common with x"


def test_the_control_plane_counts_instructions_only_on_one_vcpu() -> None:
    # QEMU 7.2 here: a 2-vCPU guest under -icount froze at "Booting SMP
    # configuration" (its clock stopped); on one vCPU synchronize_rcu()
    # returns at once, hiding the grace periods.  So with more vCPUs the
    # control plane runs on the wall clock, and says so.
    from patchgen.bench import control_clock

    assert control_clock("icount", 1) == "icount"
    assert control_clock("icount", 2) == "wall"
    assert control_clock("wall", 2) == "wall"


def test_run_diff_puts_the_rows_past_the_dispatcher_apart() -> None:
    """With more programs than the dispatcher holds, reaching a program costs
    a search over program addresses, which move per boot (6.1: 168 vs 164
    instructions): those rows are shown and named, the verdict is the rest's."""
    from patchgen.bench import OVERFLOW_FILL, RunDiff, format_run_diff

    past = f"4 hooks, {OVERFLOW_FILL} more programs"
    rows = [RunDiff("insns_per_call", "off", "5 hooks", "bpf", 200.0, 200.0),
            RunDiff("insns_per_call", "retpoline", past, "bpf", 168.0, 164.0)]
    lines = format_run_diff(rows, "a").splitlines()
    assert lines[0] == ("run-to-run against a: largest difference +0.000% (off 5 hooks, bpf); "
                        "all within 1%")
    assert lines[1] == (f"  past the dispatcher's capacity (program addresses decide the "
                        f"search, per boot): largest difference -2.381% (retpoline {past}, bpf)")
    assert sum(past in line for line in lines) == 2  # named, and its row shown
    # Only such rows: the verdict says there is nothing else to judge.
    assert "nothing else" in format_run_diff(rows[1:], "a").splitlines()[0]
