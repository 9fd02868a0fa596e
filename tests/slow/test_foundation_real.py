"""tree -> build -> boot -> selftests -> report, for real, on Debian's 6.1."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.slow.conftest import ROOT, patchgen

pytestmark = pytest.mark.slow

QUICK = {"nft_meta.sh", "nf_nat_edemux.sh", "conntrack_vrf.sh", "nft_synproxy.sh",
         "conntrack_sctp_collision.sh", "nft_conntrack_helper.sh",
         "conntrack_icmp_related.sh", "nft_queue.sh"}
# The equivalence cases run with the selftests (recorded as the baseline on an
# unpatched tree): one per case_* function of the guest script.
EQUIV = {"equiv:" + m.group(1) for m in re.finditer(
    r"^case_(\w+)\(\)", (ROOT / "selftests" / "equiv" / "equiv.sh").read_text(), re.M)}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                   Path]:
    out = tmp_path_factory.mktemp("quick")
    res = patchgen("test", "--tests", "quick", "--output", str(out))
    return res, out


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data


def test_quick_selftests_pass_in_a_real_guest(quick_run: tuple[Any, Path]) -> None:
    res, out = quick_run
    assert res.returncode == 0, res.stdout + res.stderr
    report = _report(out)
    names = {t["name"] for t in report["tests"]}
    assert len(EQUIV) >= 13 and names == QUICK | EQUIV
    for t in report["tests"]:
        assert t["outcome"] in ("pass", "flaky"), t
        if t["name"] in EQUIV:
            continue
        output = t["attempts"][-1]["output"]
        # Real KTAP from the tree's runner, with the script's own output in it.
        assert "TAP version 13" in output and f"selftests: netfilter: {t['name']}" in output
        assert any(line.startswith("# ") and "selftests:" not in line
                   for line in output.splitlines()), output


def test_report_metadata_and_stages(quick_run: tuple[Any, Path]) -> None:
    _, out = quick_run
    report = _report(out)
    meta = report["metadata"]
    assert meta["version"].startswith("6.1.")
    assert meta["accel"] in ("kvm", "tcg") and meta["accel_reason"]
    assert len(meta["config_digest"]) == 64
    assert {"gcc", "qemu", "vng"} <= set(meta["tools"])
    stages = [s["name"] for s in report["stages"]]
    assert stages[0] == "tree" and any(s.startswith("selftests") for s in stages)
    boots = report["guest"]["boots"]
    assert boots and boots[0]["seconds_to_ssh"] > 0 and boots[0]["peak_rss_kb"] > 0
    # TCG guests run on one host thread (see patchgen/vm/argv.py for why).
    tcg = "-accel tcg,thread=single"
    assert report["guest"]["qemu_opts"] == (tcg if meta["accel"] == "tcg" else "")
    assert report["command"].startswith("patchgen test --version 6.1")


def test_junit_and_console_log(quick_run: tuple[Any, Path]) -> None:
    res, out = quick_run
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(QUICK | EQUIV))
    # boot-1 with one guest; boot-1-1 for the first guest of several (--jobs).
    first = next(d for d in (out / "boot-1", out / "boot-1-1") if d.is_dir())
    console = (first / "console.log").read_text()
    assert "patchgen-guest-ready" in console and "Linux version" in console
    # The console log starts with the vng command line patchgen ran.
    vng_line = console.splitlines()[0]
    assert vng_line.startswith("$ vng --run ")
    if "--disable-kvm" in vng_line:
        assert "--qemu-opts=-accel tcg,thread=single" in vng_line
    for name in QUICK:
        assert name in res.stdout  # the terminal summary, test by test


def test_second_build_is_skipped() -> None:
    res = patchgen("build")
    assert res.returncode == 0, res.stderr
    assert "up to date:" in res.stderr


def _qemu_pids(tag: str) -> set[int]:
    """The QEMU processes of the run tagged ``tag``, not every QEMU on the machine:
    they inherit the tag in their environment, and keep it if orphaned."""
    out = subprocess.run(["pgrep", "-f", "qemu-system"], capture_output=True, text=True).stdout
    mine = set()
    for pid in (int(p) for p in out.split()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if f"{TAG_VAR}={tag}".encode() in environ:
            mine.add(pid)
    return mine


# Marks the processes of one run: patchgen, vng and QEMU inherit it.
TAG_VAR = "PATCHGEN_SLOW_TEST_TAG"


def _default_sigint() -> None:
    # A shell that starts CI in the background ignores SIGINT for it, and the
    # child would inherit that; a user's terminal delivers Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_once_booting(args: list[str], seen: str, guests: int, wait: float
                            ) -> None:
    """Start ``patchgen ARGS``, Ctrl-C it once ``seen`` is on its stderr and
    ``guests`` QEMUs run: it must exit 130 and leave no QEMU behind."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    child = subprocess.Popen(
        [sys.executable, "-m", "patchgen", *args], cwd=ROOT, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True, env={**os.environ, TAG_VAR: tag},
        preexec_fn=_default_sigint)
    assert child.stderr is not None
    deadline = time.monotonic() + wait
    for line in child.stderr:
        if seen in line or time.monotonic() > deadline:
            break
    # vng execs QEMU a moment after the first "booting" line: wait for it.
    while len(_qemu_pids(tag)) < guests and time.monotonic() < deadline:
        assert child.poll() is None, "patchgen ended early: " + child.stderr.read()
        time.sleep(0.5)
    assert len(_qemu_pids(tag)) >= guests, f"{guests} QEMU(s) were not started"
    time.sleep(2)
    child.send_signal(signal.SIGINT)
    rc = child.wait(timeout=60)
    assert rc == 130
    time.sleep(1)
    assert not _qemu_pids(tag), "QEMU left behind after Ctrl-C"


def test_ctrl_c_during_boot_leaves_no_qemu(tmp_path: Path) -> None:
    _interrupt_once_booting(["boot", "--output", str(tmp_path), "--", "sleep", "600"],
                            "booting", 1, 300)


def test_ctrl_c_with_two_guests_booting_leaves_no_qemu(tmp_path: Path) -> None:
    """Ctrl-C reaches the main thread only; both guests' lanes must still power off."""
    # (the base build is the quick run's, done by now)
    _interrupt_once_booting(["test", "--tests", "nft_meta.sh,nft_nat.sh", "--no-equiv",
                             "--jobs", "2", "--output", str(tmp_path)], "[guest 2]", 2, 600)
    assert json.loads((tmp_path / "report.json").read_text())["error"] == "interrupted"
