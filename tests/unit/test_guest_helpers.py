from __future__ import annotations

import shlex
from pathlib import Path

from patchgen.progress import null_progress
from patchgen.vm.accel import Accel
from patchgen.vm.argv import GuestSpec
from patchgen.vm.guest import Guest, find_trouble, free_port, remote_command

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


def _guest_with_console(tmp_path: Path, text: str) -> Guest:
    spec = GuestSpec(tmp_path / "bzImage", Accel.TCG, 2222, tmp_path / "init.sh")
    guest = Guest(spec, tmp_path, null_progress())
    guest.console_log.write_text(text)
    return guest


def test_boot_failure_after_a_panic_is_the_kernels(tmp_path: Path) -> None:
    guest = _guest_with_console(tmp_path, (CONSOLE / "panic.log").read_text())
    exc = guest._boot_failure("kernel BUG (panic) during boot", guest.trouble())
    assert exc.kernel_fault and "Kernel panic - not syncing" in exc.message


def test_boot_failure_without_kernel_trouble_may_be_the_machines(tmp_path: Path) -> None:
    guest = _guest_with_console(tmp_path, (CONSOLE / "clean.log").read_text())
    exc = guest._boot_failure("no SSH after 240s", guest.trouble())
    assert not exc.kernel_fault and "no SSH after 240s" in exc.message
