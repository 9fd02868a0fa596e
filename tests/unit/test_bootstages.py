"""Boot stages from real console logs (excerpts of TCG boots on this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.vm.bootstages import (
    BootStages,
    HostMarks,
    boot_stages,
    boot_stages_note,
    guest_marks,
    record_line,
)

CONSOLE = Path(__file__).parent.parent / "data" / "console"


def test_guest_marks_of_a_6_1_boot() -> None:
    marks = guest_marks((CONSOLE / "boot-6.1.log").read_text())
    assert marks == {"init": 1.165739, "basic_done": 2.327116, "net_start": 2.525665,
                     "udev_start": 2.739116, "udev_done": 7.089098, "lease": 7.449869,
                     "script": 8.321143, "ready": 10.163101}


def test_stages_of_a_6_1_boot() -> None:
    console = (CONSOLE / "boot-6.1.log").read_text()
    b = boot_stages(console, HostMarks(first_kernel_line=4.2, ready_seen=14.5,
                                       ssh_connected=15.1))
    stages = dict(b.stages)
    assert list(stages) == ["host", "kernel", "init", "services", "script", "ssh", "other"]
    assert stages["host"] == 4.2
    assert stages["kernel"] == pytest.approx(1.165739)
    assert stages["init"] == pytest.approx(2.327116 - 1.165739)
    assert stages["services"] == pytest.approx(8.321143 - 2.327116)
    assert stages["script"] == pytest.approx(10.163101 - 8.321143)
    assert stages["ssh"] == pytest.approx(0.6)
    # The stages add up to the total; "other" is what the others leave.
    assert sum(stages.values()) == pytest.approx(15.1)
    assert dict(b.details) == pytest.approx({"udev": 7.089098 - 2.739116,
                                             "dhcp": 7.449869 - 2.525665})


@pytest.mark.parametrize("version,services,udev", [("6.12", 6.33, 4.75), ("7.2", 9.08, 6.85)])
def test_stages_of_later_kernels(version: str, services: float, udev: float) -> None:
    console = (CONSOLE / f"boot-{version}.log").read_text()
    record = boot_stages(console, HostMarks(4.0, 14.0, 15.0)).record()
    assert record["stages"]["services"] == services
    assert record["details"]["udev"] == udev
    assert record["total"] == 15.0


def test_missing_marks_leave_their_stages_out() -> None:
    # A console with no guest marks (another init) and no host moments but the total.
    b = boot_stages("[    0.000000] Linux version 6.1\n", HostMarks(None, None, 9.0))
    assert b.stages == () and b.details == ()
    assert b.record() == {"total": 9.0, "stages": {}, "details": {}}


def test_lines_for_the_summary() -> None:
    b = BootStages(15.0, (("host", 4.04), ("kernel", 1.2)), (("udev", 4.35),))
    assert b.line() == "host 4.0s, kernel 1.2s (within services: udev 4.3s)"
    assert record_line(b.record()) == b.line()
    assert boot_stages_note(b) == "; boot: " + b.line()
    assert boot_stages_note(None) == ""
