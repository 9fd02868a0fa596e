"""Several guests at once (--jobs): the work of a run in units with stable
keys, one guest per lane, results in the serial order, no guest left
behind after Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from patchgen import equiv, kselftest, proc
from patchgen.kselftest import NO_VARIANT, Installed, Lane, ScriptPlan, TestPlan, Variant
from patchgen.progress import Progress
from patchgen.results import Expectations, Outcome
from patchgen.vm.accel import Accel
from patchgen.vm.guest import CommandResult

ON = Variant("nf_hook_bpf=1", {"net.netfilter.nf_hook_bpf": "1"})
OFF = Variant("nf_hook_bpf=0", {"net.netfilter.nf_hook_bpf": "0"})
PLANS = [TestPlan("nft_meta.sh", 60), TestPlan("nft_nat.sh", 60), TestPlan("nft_queue.sh", 60)]
SCRIPTS = (ScriptPlan(Path("/s/nf_hook_bpf.sh"), 60),
           ScriptPlan(Path("/t/nf_hook_bpf.sh"), 60, label="selftest/nf_hook_bpf.sh"))
INSTALLED = Installed(Path("/ksft"), "net/netfilter", tuple(p.name for p in PLANS))
KTAP_PASS = "TAP version 13\n1..1\nok 1 selftests: net/netfilter: x.sh\n"
SCRIPT_KTAP = "TAP version 13\n1..2\nok 1 load\nok 2 churn\n"
EQUIV_OUT = "case a v4 drop=1\n"


def test_work_keys_name_every_unit_in_the_serial_order() -> None:
    keys = kselftest.work_keys(PLANS[:2], (ON, OFF), SCRIPTS, equiv=True)
    assert keys == ["1/nft_meta.sh", "1/nft_nat.sh", "0/nft_meta.sh", "0/nft_nat.sh",
                    "script:nf_hook_bpf.sh", "script:selftest/nf_hook_bpf.sh", "equiv"]
    assert kselftest.work_keys(PLANS[:1], (NO_VARIANT,), (), equiv=False) == ["nft_meta.sh"]


def test_work_keys_are_unique_and_pure() -> None:
    keys = kselftest.work_keys(PLANS, (ON, OFF), SCRIPTS, equiv=True)
    assert len(set(keys)) == len(keys)
    assert keys == kselftest.work_keys(PLANS, (ON, OFF), SCRIPTS, equiv=True)


@pytest.mark.parametrize(("accel", "cpus", "mem_gib", "units", "want"), [
    (Accel.TCG, 2, 24, 40, 2),  # this machine: one single-threaded guest per core
    (Accel.TCG, 16, 5, 40, 2),  # memory for two 2G guests only
    (Accel.TCG, 16, 64, 3, 3),  # no more guests than units of work
    (Accel.TCG, 4, 1, 40, 1),  # not even one guest's memory: still one
    (Accel.KVM, 16, 64, 40, 8),  # KVM: host CPUs over guest CPUs
    (Accel.KVM, 1, 64, 40, 1),
])
def test_default_jobs(accel: Accel, cpus: int, mem_gib: int, units: int, want: int) -> None:
    gib = 1 << 30
    assert kselftest.default_jobs(accel, cpus, mem_gib * gib, 2 * gib, 2, units) == want


# -- fake guests ---------------------------------------------------------------------
class FakeGuest:
    """Answers as a guest would; each command takes ``delay`` seconds."""

    def __init__(self, lane: Lane, booted: list[int], delay: float,
                 block: bool = False) -> None:
        self.lane = lane
        self.booted = booted
        self.delay = delay
        self.block = block
        self.switch = ""
        self.ran: list[tuple[str, str]] = []  # (what, switch position)
        self.spec = cast(Any, type("Spec", (), {"accel": Accel.TCG}))
        self.child: subprocess.Popen[bytes] | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> FakeGuest:
        # A real process group, as QEMU under vng is.
        self.child = self._stack.enter_context(
            proc.background(["sleep", "600"], log_path=Path(os.devnull)))
        self.booted.append(self.child.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def console(self) -> str:
        return ""

    def console_size(self) -> int:
        return 0

    def trouble(self, since: int = 0) -> None:
        return None

    def responsive(self) -> bool:
        return True

    def run(self, argv: list[str], timeout: float, env: dict[str, str] | None = None
            ) -> CommandResult:
        if argv[0] == "sysctl":
            self.switch = argv[-1].rsplit("=", 1)[1]
            return CommandResult(tuple(argv), 0, "", "", 0.0)
        if argv[0] == "cp":
            return CommandResult(tuple(argv), 0, "", "", 0.0)
        deadline = time.monotonic() + self.delay
        while self.block or time.monotonic() < deadline:
            if self.lane.cancel.is_set():  # as Guest.run does
                raise KeyboardInterrupt
            time.sleep(0.01)
        what = argv[-1] if argv[0] == "bash" else argv[2].split(":")[-1].split()[0]
        self.ran.append((what, self.switch))
        out = (EQUIV_OUT if what == "/e/equiv.sh" else
               SCRIPT_KTAP if argv[0] == "bash" else KTAP_PASS)
        return CommandResult(tuple(argv), 0, out, "", self.delay)


class Boots:
    """A guest factory that keeps every guest it made, by lane."""

    def __init__(self, delay: float = 0.0, block: bool = False) -> None:
        self.delay = delay
        self.block = block
        self.guests: list[FakeGuest] = []
        self.pids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, lane: Lane) -> contextlib.AbstractContextManager[Any]:
        guest = FakeGuest(lane, self.pids, self.delay, self.block)
        with self.lock:
            self.guests.append(guest)
        return guest


def _run(boots: Boots, jobs: int, stream: io.StringIO | None = None
         ) -> kselftest.LaneRun:
    progress = Progress(stream=stream or io.StringIO(), quiet=stream is None)
    return kselftest.run_tests(cast(Any, boots), INSTALLED, PLANS, Expectations(None, {}),
                               progress, 0, (ON, OFF), SCRIPTS, None,
                               equiv.EquivPlan(Path("/e/equiv.sh")), jobs=jobs)


def _shape(run: kselftest.LaneRun) -> list[tuple[str, str, str]]:
    return [(t.name, t.variant, t.outcome.value) for t in run.results]


def test_two_lanes_give_the_results_of_one_in_the_same_order() -> None:
    serial, parallel = _run(Boots(), 1), _run(Boots(), 2)
    assert _shape(parallel) == _shape(serial)
    assert [t.outcome for t in parallel.results] == [Outcome.PASS] * len(parallel.results)
    assert len(parallel.lanes) == 2 and len(serial.lanes) == 1


def test_each_lane_has_its_own_guest_and_one_switch_position() -> None:
    boots = Boots(delay=0.05)  # (without, one lane may be done before the other starts)
    run = _run(boots, 2)
    assert len(boots.guests) == 2 and {g.lane.number for g in boots.guests} == {1, 2}
    for guest in boots.guests:
        tests = [(what, pos) for what, pos in guest.ran if what.endswith(".sh")
                 and not what.startswith("/")]
        assert len({pos for _, pos in tests}) == 1, guest.ran
    assert sorted(k for lane in run.lanes for k in lane.keys) == sorted(
        kselftest.work_keys(PLANS, (ON, OFF), SCRIPTS, equiv=True))


def test_lanes_run_at_once_and_the_time_saved_is_counted() -> None:
    start = time.monotonic()
    run = _run(Boots(delay=0.2), 2)
    wall = time.monotonic() - start
    busy = sum(lane.busy_seconds for lane in run.lanes)
    # 10 commands of 0.2 s (6 tests, 2 scripts, equivalence in 2 positions):
    # 2 s one after another, about 1.2 s in two lanes.
    assert busy >= 2.0 and wall < busy - 0.5


def test_one_lane_boots_as_before_and_runs_the_units_in_their_order() -> None:
    boots = Boots()
    _run(boots, 1)
    assert [g.lane.number for g in boots.guests] == [0]  # boot-1, boot-2, ... as before
    assert boots.guests[0].ran == [
        ("nft_meta.sh", "1"), ("nft_nat.sh", "1"), ("nft_queue.sh", "1"),
        ("nft_meta.sh", "0"), ("nft_nat.sh", "0"), ("nft_queue.sh", "0"),
        ("/s/nf_hook_bpf.sh", "0"), ("/t/nf_hook_bpf.sh", "0"),
        ("/e/equiv.sh", "1"), ("/e/equiv.sh", "0")]


def test_progress_lines_say_which_guest() -> None:
    out = io.StringIO()
    _run(Boots(), 2, out)
    lines = [ln for ln in out.getvalue().splitlines() if "nft_meta.sh" in ln]
    assert lines and all("[guest 1]" in ln or "[guest 2]" in ln for ln in lines)


def test_ctrl_c_shuts_down_every_guest() -> None:
    boots = Boots(block=True)
    threads = threading.active_count()

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 10
        while len(boots.pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _run(boots, 2)
    assert len(boots.pids) == 2
    for pid in boots.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: proc.background killed its group
    deadline = time.monotonic() + 5
    while threading.active_count() > threads + 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # (the Ctrl-C thread may still be ending)
    assert threading.active_count() <= threads + 1


def test_a_lane_that_fails_stops_the_others() -> None:
    from patchgen.errors import GuestFailure

    class Failing(Boots):
        def __call__(self, lane: Lane) -> contextlib.AbstractContextManager[Any]:
            if lane.number == 2:
                raise GuestFailure("no SSH after 240s")
            return super().__call__(lane)

    boots = Failing(block=True)
    with pytest.raises(GuestFailure, match="no SSH"):
        _run(boots, 2)
    for pid in boots.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# -- the real Guest stops when its lane is cancelled -----------------------------------
class _Channel:
    """An SSH channel whose command never ends."""

    closed = False

    def recv_ready(self) -> bool:
        return False

    def recv_stderr_ready(self) -> bool:
        return False

    def exit_status_ready(self) -> bool:
        return False


class _Client:
    def exec_command(self, cmd: str, timeout: float) -> tuple[None, Any, None]:
        return None, type("Out", (), {"channel": _Channel()})(), None


def _guest(tmp_path: Path, cancel: threading.Event) -> Any:
    from patchgen.vm.argv import GuestSpec
    from patchgen.vm.guest import Guest

    spec = GuestSpec(Path("/bzImage"), Accel.TCG, 2222, Path("/init.sh"), "2G", 2)
    return Guest(spec, tmp_path, Progress(stream=io.StringIO(), quiet=True), cancel=cancel)


def test_a_cancelled_guest_command_ends_with_keyboard_interrupt(tmp_path: Path) -> None:
    cancel = threading.Event()
    guest = _guest(tmp_path, cancel)
    guest._ssh = _Client()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        guest.run(["sleep", "600"], timeout=600)
    assert time.monotonic() - start < 5


def test_a_cancelled_boot_ends_with_keyboard_interrupt(tmp_path: Path) -> None:
    cancel = threading.Event()
    guest = _guest(tmp_path, cancel)
    with proc.background(["sleep", "600"], log_path=tmp_path / "console.log") as child:
        guest._vng = child  # booting: alive, nothing on the console yet
        threading.Timer(0.2, cancel.set).start()
        with pytest.raises(KeyboardInterrupt):
            guest._wait_ready()


# -- the command line, the request and the report --------------------------------------
@pytest.mark.parametrize("command", ["test", "run"])
def test_jobs_after_the_command_is_guests_and_before_it_build_jobs(command: str) -> None:
    from patchgen.cli import build_parser, test_request

    ns = build_parser().parse_args([command, "--jobs", "2"])
    assert test_request(ns, None).jobs == 2 and ns.jobs is None
    ns = build_parser().parse_args(["-j", "4", command])
    assert test_request(ns, None).jobs is None and ns.jobs == 4


def test_jobs_is_checked_and_reproduced() -> None:
    from patchgen.commands.test import TestRequest
    from patchgen.errors import UserError
    from patchgen.tree import TreeRequest

    with pytest.raises(UserError, match="--jobs"):
        TestRequest(TreeRequest(None, None), jobs=0)
    assert "--jobs 2" in TestRequest(TreeRequest("6.1", None), jobs=2).reproducer()
    assert "--jobs" not in TestRequest(TreeRequest("6.1", None)).reproducer()


def test_default_jobs_reads_the_host(tmp_path: Path) -> None:
    from patchgen.commands.test import mem_available
    from patchgen.stages import size_bytes

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n")
    assert mem_available(meminfo) == 20000000 * 1024
    assert mem_available(tmp_path / "none") == 0
    assert [size_bytes(s) for s in ("2G", "512M", "4096")] == [2 << 30, 512 << 20, 4096]


def test_the_report_keeps_the_lanes_and_the_time_saved() -> None:
    from patchgen.commands.test import record_lanes
    from patchgen.report import Report, summary

    report = Report(command="patchgen test", started="now")
    report.guest = {"jobs": 2}
    lanes = (kselftest.LaneRecord(1, ["1/nft_meta.sh"], 400.0),
             kselftest.LaneRecord(2, ["0/nft_meta.sh", "equiv"], 380.0))
    record_lanes(report, lanes, 410.0)
    assert report.guest["lanes"][1] == {"lane": 2, "busy_seconds": 380.0,
                                        "units": ["0/nft_meta.sh", "equiv"]}
    assert report.guest["saved_seconds"] == 370.0
    assert report.to_json()["guest"]["saved_seconds"] == 370.0
    assert ("  guests: 2 at once, busy 6m40s + 6m20s; saved 6m10s of wall time"
            in summary(report, "nf_hook_bpf").splitlines())
    report.guest = {"jobs": 1, "lanes": [{"lane": 0, "busy_seconds": 400.0, "units": []}],
                    "saved_seconds": 0.0}
    assert "  guests: 1 at a time, busy 6m40s" in summary(report, "nf_hook_bpf").splitlines()
    report.guest = {}  # a report from before --jobs, or an interrupted run
    assert "guests:" not in summary(report, "nf_hook_bpf")


def test_a_test_run_once_is_in_the_first_position_only() -> None:
    """The series' own selftest sets the switch itself, case by case: started
    at each position it ran the same cases twice (about 200 s each)."""
    once = TestPlan("nf_hook_bpf.sh", 300, once=True)
    keys = kselftest.work_keys([PLANS[0], once], (ON, OFF), (), equiv=False)
    assert keys == ["1/nft_meta.sh", "1/nf_hook_bpf.sh", "0/nft_meta.sh"]
    cat = kselftest.Catalogue(300, {"nf_hook_bpf.sh": {"once": True}}, {})
    assert cat.plan("nf_hook_bpf.sh").once and not cat.plan("nft_meta.sh").once


def test_with_costs_the_longest_unit_starts_first() -> None:
    """The equivalence cases (about 250 s) came last in the serial order, so
    one guest ran them alone at the end while the other idled (about 3 min
    of a 20 min run).  With the measured costs a guest starts with them;
    the results keep the serial order."""
    costs = {"equiv": 250.0, "script:selftest/nf_hook_bpf.sh": 200.0}

    def run(cost: Any) -> kselftest.LaneRun:
        return kselftest.run_tests(cast(Any, Boots(delay=0.01)), INSTALLED, PLANS,
                                   Expectations(None, {}), Progress(stream=io.StringIO(),
                                                                    quiet=True),
                                   0, (ON, OFF), SCRIPTS, None,
                                   equiv.EquivPlan(Path("/e/equiv.sh")), jobs=2, cost=cost)

    plain, longest = run(None), run(lambda key: costs.get(key, 10.0))
    assert "equiv" not in [lane.keys[0] for lane in plain.lanes]
    assert sorted(lane.keys[0] for lane in longest.lanes) == [
        "equiv", "script:selftest/nf_hook_bpf.sh"]
    assert _shape(longest) == _shape(plain)


def test_a_script_that_stops_before_its_plan_is_done_fails(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """check --boot at patch 8: the series' selftest printed 4 of the 8 results
    its plan ("1..8") promised and stopped; the boot column said "ok 21/21"."""
    short = "TAP version 13\n1..8\nok 1 bpf_syscalls\nok 2 kallsyms\n"
    monkeypatch.setattr(sys.modules[__name__], "SCRIPT_KTAP", short)
    run = kselftest.run_tests(cast(Any, Boots()), INSTALLED, PLANS[:1], Expectations(None, {}),
                              Progress(stream=io.StringIO(), quiet=True), 0, (ON,),
                              SCRIPTS[:1])
    got = {t.name: t for t in run.results}
    assert got["nf_hook_bpf.sh:bpf_syscalls"].outcome is Outcome.PASS
    whole = got["nf_hook_bpf.sh"]
    assert whole.outcome.bad and "plan says 8 tests, found 2" in whole.attempts[0].detail
