from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

import pytest

from patchgen.errors import GuestFailure
from patchgen.progress import null_progress
from patchgen.vm.accel import Accel
from patchgen.vm.argv import GuestSpec
from patchgen.vm.guest import CommandResult, Guest, find_trouble, free_port, remote_command

CONSOLE = Path(__file__).parent.parent / "data" / "console"


def test_remote_command_quotes_argv_and_unsets_ssh_env() -> None:
    cmd = remote_command(["sh", "-c", "echo 'a b'; ls"], {"quicktest": "1"}, "/tmp/x y")
    assert cmd.startswith("cd '/tmp/x y' && env -uSSH_CLIENT -uSSH_CONNECTION -uSSH_TTY ")
    words = shlex.split(cmd.split(" && ", 1)[1])
    assert words[4:] == ["quicktest=1", "sh", "-c", "echo 'a b'; ls"]


def test_find_trouble_panic() -> None:
    text = (CONSOLE / "panic.log").read_text()
    t = find_trouble(text)
    assert t is not None and t.kind == "BUG" and t.panicked and t.fatal
    assert str(t) == "BUG (panic)"
    assert t.excerpt[2].endswith("BUG: kernel NULL pointer dereference, address: 0000000000000008")
    assert any("Kernel panic - not syncing" in line for line in t.excerpt)


def test_find_trouble_soft_lockup_before_panic() -> None:
    t = find_trouble((CONSOLE / "softlockup.log").read_text())
    assert t is not None and t.kind == "lockup" and t.panicked


def test_find_trouble_only_after_mark() -> None:
    text = (CONSOLE / "panic.log").read_text()
    assert find_trouble(text, since=len(text)) is None


def test_clean_boot_has_no_trouble() -> None:
    assert find_trouble((CONSOLE / "clean.log").read_text()) is None


def test_free_port() -> None:
    assert 1024 < free_port() < 65536


def test_warning_alone_is_not_fatal() -> None:
    text = "[ 1.0] ------------[ cut here ]------------\n[ 1.1] WARNING: CPU: 0 PID: 1 at x\n"
    t = find_trouble(text)
    assert t is not None and t.kind == "warning" and not t.fatal


def test_a_lockdep_report_is_trouble_but_not_fatal() -> None:
    """"WARNING: possible circular locking dependency detected" matched
    nothing: a lockdep kernel's reports went unseen."""
    for line in ("WARNING: possible circular locking dependency detected",
                 "WARNING: suspicious RCU usage",
                 "WARNING: inconsistent lock state",
                 "WARNING: possible recursive locking detected"):
        t = find_trouble(f"[ 1.0] ====================\n[ 1.1] {line}\n")
        assert t is not None and t.kind == "lockdep" and not t.fatal, line
    # Reports that an earlier pattern list missed (a hostile read).
    for line in ("WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
                 "WARNING: lock held when returning to user space!",
                 "nft/123 still has locks held!"):
        t = find_trouble(f"[ 1.1] {line}\n")
        assert t is not None and t.kind == "lockdep", line


def test_a_fatal_report_after_a_warning_is_what_counts() -> None:
    """The first line decided: a lockdep report followed by a BUG without a
    panic was judged not fatal, and the guest kept running tests."""
    t = find_trouble("[ 1.0] WARNING: possible circular locking dependency detected\n"
                     "[ 2.0] BUG: sleeping function called from invalid context at x\n")
    assert t is not None and t.kind == "BUG" and t.fatal


def _guest_with_console(tmp_path: Path, text: str) -> Guest:
    spec = GuestSpec(tmp_path / "bzImage", Accel.TCG, 2222, tmp_path / "init.sh")
    guest = Guest(spec, tmp_path, null_progress())
    guest.console_log.write_text(text)
    return guest


def test_boot_failure_after_a_panic_is_the_kernels(tmp_path: Path) -> None:
    guest = _guest_with_console(tmp_path, (CONSOLE / "panic.log").read_text())
    exc = guest.failure("kernel BUG (panic) during boot", guest.trouble())
    assert exc.kernel_fault and "Kernel panic - not syncing" in exc.message


def test_boot_failure_without_kernel_trouble_may_be_the_machines(tmp_path: Path) -> None:
    guest = _guest_with_console(tmp_path, (CONSOLE / "clean.log").read_text())
    exc = guest.failure("no SSH after 240s", guest.trouble())
    assert not exc.kernel_fault and "no SSH after 240s" in exc.message


def _run_printing(guest: Guest, console_after: str) -> None:
    """Make guest.run() a command that prints, while the kernel logs console_after."""
    def run(argv: Sequence[str], **_: object) -> CommandResult:
        with guest.console_log.open("a") as f:
            f.write(console_after)
        return CommandResult(tuple(argv), None, "round 1\n", "", 30.0)

    guest.run = run  # type: ignore[method-assign]


def test_run_checked_names_a_lockup_while_the_command_ran(tmp_path: Path) -> None:
    # The CI run's console: both vCPUs stuck at the dispatcher's entry.
    guest = _guest_with_console(tmp_path, (CONSOLE / "clean.log").read_text())
    _run_printing(guest, (CONSOLE / "dispatcher-int3-loop.log").read_text())
    with pytest.raises(GuestFailure) as info:
        guest.run_checked(["stress.sh"], timeout=60)
    assert info.value.kernel_fault
    assert info.value.message.startswith("kernel lockup (panic) while the command ran")
    assert "round 1" in info.value.message
    assert "bpf_dispatcher_nf_hook_base_func+0x0" in info.value.message


def test_run_checked_ignores_trouble_from_before_the_command(tmp_path: Path) -> None:
    guest = _guest_with_console(tmp_path, (CONSOLE / "softlockup.log").read_text())
    _run_printing(guest, "[ 300.0] all quiet\n")
    assert guest.run_checked(["true"], timeout=60).stdout == "round 1\n"
