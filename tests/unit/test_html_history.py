from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from patchgen import history, html
from patchgen.bench import BenchResult
from patchgen.check import BuildCheck, CheckpatchResult, CheckReport, PatchCheck
from patchgen.report import Report, write_json
from patchgen.series.render import Renderer
from patchgen.settings import PROJECT_ROOT
from tests.unit.test_report import sample


def _report(tmp_path: Path) -> Report:
    """The sample as the readers see it: written, and read back."""
    write_json(sample(), tmp_path / "r.json")
    return Report.load(tmp_path / "r.json")


def test_history_counts_flakes_and_pass_rates(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    report = _report(tmp_path)
    history.append(path, report, "run1")
    history.append(path, report, "run2")
    with path.open("a") as f:
        f.write('{"torn line\n')  # an interrupted run must not break the history
    rates = history.rates(history.load(path))
    assert str(rates["nft_meta.sh"]) == "2/2"
    assert str(rates["conntrack_tcp_unreplied.sh"]) == "0/2 (2 flaky)"
    assert str(rates["nft_meta.sh[nf_hook_bpf=0]"]) == "2/2"
    assert str(rates["nft_trans_stress.sh"]) == "0/2"


def test_html_shows_patches_tests_failures_and_escapes_output(tmp_path: Path) -> None:
    report = _report(tmp_path)
    t = report.tests[2]
    attempt = dataclasses.replace(t.attempts[0], output="<script>alert(1)</script>")
    report.tests[2] = dataclasses.replace(t, attempts=(attempt, *t.attempts[1:]))
    check = CheckReport("debian-6.1.192", "b" * 40, "patchgen/nf-hook-bpf", [PatchCheck(
        1, "s" * 40, "netfilter: nf_queue: carry index in hook state", [],
        [BuildCheck("default", False, 3.0, 0, ["net/netfilter/core.c:12: error: boom"])],
        CheckpatchResult(0, 0, 0, []))])
    view = html.RunView("t61", "debian-6.1.192", "debian", check=check, report=report,
                        history={"nft_meta.sh": "2/2"})
    page = html.render(Renderer(PROJECT_ROOT / "templates"), "test", [view])
    assert "netfilter: nf_queue: carry index in hook state" in page
    assert "net/netfilter/core.c:12: error: boom" in page
    assert "nft_trans_stress.sh" in page and "watchdog: BUG: soft lockup" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "2/2" in page


def _bench() -> BenchResult:
    from patchgen.bench import compare

    # 8 rounds: enough for an interval (fewer get none, and say so)
    res = BenchResult("tcg", [compare("fwd_pps", "retpoline", "ct", [110.0] * 8, [100.0] * 8)],
                      missing=[("ns_per_call", "off", "20 hooks")])
    return BenchResult.from_json(json.loads(json.dumps(res.to_json())))


def test_html_and_markdown_show_the_benchmark(tmp_path: Path) -> None:
    from tests.unit.test_ci_files import _pipeline

    bench = _bench()
    view = html.RunView("t61", "debian-6.1.192", bench=bench, bench_png="6.1/bench/bench.png")
    page = html.render(Renderer(PROJECT_ROOT / "templates"), "test", [view])
    assert "emulation figures" in page and "1.100 [1.100, 1.100]" in page
    assert "+10.0%" in page and "no usable measurement" in page
    assert 'src="6.1/bench/bench.png"' in page
    assert "consistent with the RFC&#39;s +5% to +13%" in page
    md = "\n".join(_pipeline().bench_markdown(bench))
    assert "| fwd_pps | retpoline | ct | 110.0 | 100.0 | 1.100 [1.100, 1.100] | +10.0% |" in md
    assert "| ns_per_call | off | 20 hooks | ❌ no measurement" in md


def test_html_shows_an_icount_bench_with_its_derived_figures() -> None:
    from patchgen.bench import compare

    res = BenchResult("tcg", mode="icount", calibration={"retpoline": 4.0, "off": 2.0})
    for mitigation, extra in (("retpoline", 2.0), ("off", 0.0)):
        res.comparisons.append(compare("insns_per_call", mitigation, "5 hooks", [169.0] * 3,
                                       [246.0 + 6 * extra] * 3, icount=True))
    bench = BenchResult.from_json(json.loads(json.dumps(res.to_json())))
    view = html.RunView("t61", "debian-6.1.192", bench=bench)
    page = html.render(Renderer(PROJECT_ROOT / "templates"), "test", [view])
    assert "icount: instruction counts" in page and "emulation figures" not in page
    assert "indirect calls per operation" in page and "cost model" in page
    assert "0.655 [0.655, 0.655]" in page
