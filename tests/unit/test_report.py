from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from patchgen.progress import StageTiming
from patchgen.report import Report, junit_tree, summary, write_json, write_junit
from patchgen.results import Attempt, Outcome, TestResult

GOLDEN = Path(__file__).parent.parent / "data" / "report"


def sample() -> Report:
    r = Report(command="patchgen test --version 6.1 --tests quick",
               started="2026-11-26T18:00:00+00:00")
    r.metadata.update({"tree": "debian-6.1.192", "origin": "debian:linux-source-6.1 6.1.192-2",
                       "profile": "selftests", "accel": "tcg", "version": "6.1.192",
                       "config_digest": "abc"})
    r.stages = [StageTiming("tree", 0.1, True), StageTiming("build (selftests)", 612.0, True)]
    r.tests = [
        TestResult("nft_meta.sh", Outcome.PASS, (Attempt(Outcome.PASS, 8.6, 0, "ok"),),
                   Outcome.PASS),
        TestResult("nft_meta.sh", Outcome.PASS, (Attempt(Outcome.PASS, 8.9, 0, "ok"),),
                   Outcome.PASS, variant="nf_hook_bpf=0"),
        TestResult("nft_audit.sh", Outcome.FAIL, (Attempt(Outcome.FAIL, 13.6, 1, "FAIL reset",
                                                          "exit=1"),) * 2, Outcome.FAIL,
                   "host nft 1.0.6 lacks reset rules"),
        TestResult("conntrack_tcp_unreplied.sh", Outcome.FLAKY,
                   (Attempt(Outcome.FAIL, 5.8, 1, "did not pick up", "exit=1"),
                    Attempt(Outcome.PASS, 6.0, 0, "ok")), Outcome.PASS),
        TestResult("bridge_brouter.sh", Outcome.SKIP, (Attempt(Outcome.SKIP, 4.0, 4, "", "SKIP"),),
                   None),
        TestResult("nft_trans_stress.sh", Outcome.CRASH,
                   (Attempt(Outcome.CRASH, 361.5, None, "", "guest stopped answering (hang)",
                            ("[ 1.0] watchdog: BUG: soft lockup",)),) * 2, Outcome.PASS),
        TestResult("nft_queue.sh", Outcome.TIMEOUT,
                   (Attempt(Outcome.TIMEOUT, 303.6, None, "", "TIMEOUT 300 seconds"),) * 2,
                   None, variant="nf_hook_bpf=0"),
    ]
    return r


def test_summary_golden() -> None:
    assert summary(sample(), "nf_hook_bpf") + "\n" == (GOLDEN / "summary.txt").read_text()


def test_json_is_complete_and_valid(tmp_path: Path) -> None:
    write_json(sample(), tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["total"] == 7
    assert data["summary"]["flaky"] == 1
    assert data["summary"]["regressions"] == ["nft_trans_stress.sh"]
    assert data["summary"]["failed_without_expectation"] == ["nft_queue.sh [nf_hook_bpf=0]"]
    crash = data["tests"][5]["attempts"][0]
    assert crash["console"] == ["[ 1.0] watchdog: BUG: soft lockup"]
    assert data["tests"][3]["change"] == "changed"
    assert data["tests"][1]["variant"] == "nf_hook_bpf=0"


def test_junit_is_valid_and_typed(tmp_path: Path) -> None:
    write_junit(sample(), tmp_path / "j.xml")
    root = ET.parse(tmp_path / "j.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("tests") == "7"
    assert suite.get("failures") == "2"
    assert suite.get("errors") == "1"
    assert suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["nft_audit.sh"].find("failure") is not None
    assert cases["nft_trans_stress.sh"].find("error") is not None
    timeout = cases["nft_queue.sh [nf_hook_bpf=0]"].find("failure")
    assert timeout is not None and timeout.get("type") == "timeout"
    assert cases["conntrack_tcp_unreplied.sh"].find("flakyFailure") is not None
    assert cases["conntrack_tcp_unreplied.sh"].find("failure") is None
    assert cases["bridge_brouter.sh"].find("skipped") is not None
    assert cases["nft_meta.sh"].find("failure") is None
    assert cases["nft_meta.sh [nf_hook_bpf=0]"].find("failure") is None


def test_junit_golden() -> None:
    root = junit_tree(sample()).getroot()
    assert root is not None
    text = ET.tostring(root, encoding="unicode") + "\n"
    assert text == (GOLDEN / "junit.xml").read_text()


def test_summary_says_which_switch_default_the_guest_got() -> None:
    r = sample()
    r.guest = {"accel": "tcg", "boots": [{"boot": 1, "switch_default": "1",
                                          "spectre_v2": "Mitigation: Retpolines; STIBP: disabled"}]}
    assert ("  switch default in the guest: nf_hook_bpf=1 (spectre_v2: Mitigation: "
            "Retpolines; STIBP: disabled)") in summary(r, "nf_hook_bpf").splitlines()
    r.guest = {"accel": "tcg", "boots": [{"boot": 1}]}  # a kernel without the switch
    assert "switch default" not in summary(r, "nf_hook_bpf")


def test_summary_shows_where_the_first_boot_spent_its_time() -> None:
    r = sample()
    stages = {"total": 14.7, "stages": {"host": 4.1, "kernel": 1.2, "services": 6.0},
              "details": {"udev": 4.3}}
    r.guest = {"accel": "tcg", "boots": [{"boot": 1, "stages": stages}]}
    assert ("  boot to SSH 14.7s: host 4.1s, kernel 1.2s, services 6.0s "
            "(within services: udev 4.3s)") in summary(r, "nf_hook_bpf").splitlines()
    r.guest = {"accel": "tcg", "boots": [{"boot": 1}]}  # a report from before stages
    assert "boot to SSH" not in summary(r, "nf_hook_bpf")


def test_a_shard_report_says_which_shard_and_reads_back(tmp_path: Path) -> None:
    from patchgen.shard import Shard, ShardInfo

    r = sample()
    r.shard = ShardInfo(Shard(1, 2), ("1/nft_meta.sh", "equiv"),
                        ("1/nft_meta.sh", "0/nft_meta.sh", "equiv"), "durations/6.1.toml")
    write_json(r, tmp_path / "report.json")
    back = Report.load(tmp_path / "report.json")
    assert back.shard == r.shard
    assert "  shard 1/2: 2 of 3 units (1/nft_meta.sh, equiv)" in summary(r, "x").splitlines()
    plain = tmp_path / "plain.json"
    write_json(sample(), plain)
    assert json.loads(plain.read_text())["shard"] is None
    assert Report.load(plain).shard is None


def test_summary_shows_what_a_failure_printed_last() -> None:
    """CI keeps the summary; a failed case of the series' selftest said only
    'fail', and why (its diagnostics) was in a report CI did not keep."""
    r = sample()
    diag = "\n".join(["# nf_hook_ programs made for the namespaces: 20 21;", *(
        f"# line {i}" for i in range(6)), "# left after 60s: 21"])
    r.tests = [TestResult("selftest/nf_hook_bpf.sh:netns_exit", Outcome.FAIL,
                          (Attempt(Outcome.FAIL, 8.9, 1, diag),), None),
               r.tests[2]]  # an expected failure: no words of it
    text = summary(r, "nf_hook_bpf")
    said = text[text.index("what failed printed last"):].splitlines()
    assert said[1:6] == ["    selftest/nf_hook_bpf.sh:netns_exit:", "      # line 3",
                         "      # line 4", "      # line 5", "      # left after 60s: 21"]
    assert "nft_audit.sh:" not in text
