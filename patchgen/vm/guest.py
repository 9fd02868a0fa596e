"""A QEMU guest started with vng and driven over SSH (paramiko).

``Guest`` is a context manager: entering boots the kernel and waits until
SSH answers; leaving powers the guest off and kills whatever is left of the
QEMU process group, on Ctrl-C too.  Each boot has its own HOME for vng (in
the run directory), with SSH keys kept across boots (``sshkeys``), and its own
loopback port.  A guest that is one of several at once is given a
``cancel`` event: set (Ctrl-C reached the main thread, or another guest
failed), it ends a boot or a command in this guest's own thread with
KeyboardInterrupt, which unwinds to the power-off like Ctrl-C.  The
console is kept in ``console.log``; a guest that panics, oopses or stops
answering is reported with the console lines that show it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import paramiko

from patchgen import proc
from patchgen.errors import GuestFailure
from patchgen.progress import Progress
from patchgen.vm import sshkeys
from patchgen.vm.argv import GuestSpec, vng_argv
from patchgen.vm.bootstages import BootStages, HostMarks, boot_stages

READY_MARK = "patchgen-guest-ready"
# virtme-ng-init's line when it starts our init script, after sshd and DHCP.
SCRIPT_MARK = "virtme-ng-init: starting script"
_KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\] ", re.M)
PANIC = re.compile(r"Kernel panic - not syncing")
# Console lines that mean the kernel is in trouble, most specific first: the
# first such line names the trouble (a panic is usually the consequence).
_TROUBLE = [
    (re.compile(r"\bBUG: (?:soft lockup|workqueue lockup)|rcu_.*detected stalls"), "lockup"),
    (re.compile(r"INFO: task .* blocked for more than"), "hung task"),
    (re.compile(r"\bBUG: "), "BUG"),
    (re.compile(r"\bOops: |general protection fault"), "oops"),
    # Lockdep's reports ("WARNING: possible circular locking dependency
    # detected", "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order
    # detected" ...) carry no "cut here" line; a WARN() says "WARNING: CPU:".
    (re.compile(r"WARNING: (?!CPU: )|lock held when returning to user space|"
                r"still has locks held!"), "lockdep"),
    (re.compile(r"------------\[ cut here \]------------|WARNING: CPU: "), "warning"),
    (re.compile(r"unreferenced object 0x"), "kmemleak"),
    (PANIC, "panic"),
]
# Environment that must not reach test scripts (bash would source ~/.bashrc).
_UNSET = ("SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY")


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None  # None: timed out or the connection died
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Trouble:
    kind: str
    excerpt: tuple[str, ...]
    panicked: bool

    @property
    def fatal(self) -> bool:
        return self.panicked or self.kind not in ("warning", "lockdep", "kmemleak")

    def __str__(self) -> str:
        return self.kind + (" (panic)" if self.panicked and self.kind != "panic" else "")


def find_trouble(console: str, since: int = 0) -> Trouble | None:
    """The first sign of kernel trouble in the console text after ``since``;
    the first fatal one if there is any, even after a warning (a lockdep
    report followed by "BUG: sleeping function called from invalid
    context" is a broken kernel)."""
    lines = console[since:].splitlines()
    first: Trouble | None = None
    for i, line in enumerate(lines):
        for pattern, kind in _TROUBLE:
            if pattern.search(line):
                start = max(0, i - 3)
                panicked = any(PANIC.search(x) for x in lines[i:])
                found = Trouble(kind, tuple(lines[start:i + 40]), panicked)
                if found.fatal:
                    return found
                first = first or found
                break
    return first


# What our guest scripts write to /dev/kmsg when a case ends ("N name", as
# its KTAP result line): the kernel's complaints between two marks belong to
# the second case.
CASE_DONE = re.compile(r"patchgen-case-done: (\d+) (\S+)")


@dataclass(frozen=True)
class CaseTrouble:
    """A script's kernel trouble, case by case."""

    by_case: dict[int, Trouble]  # case number -> the first trouble while it ran
    after: Trouble | None  # after the last case ended (the script's cleanup)


def trouble_by_case(console: str, cases: Sequence[tuple[int, str]]) -> CaseTrouble | None:
    """Split ``console`` at the cases' end marks and find each case's
    trouble; None unless every case left its mark, in order (the marks of
    another script, or a log that lost one, attribute nothing)."""
    marks = [m for m in CASE_DONE.finditer(console)
             if (int(m[1]), m[2]) in set(cases)]
    if [(int(m[1]), m[2]) for m in marks] != list(cases):
        return None
    by_case: dict[int, Trouble] = {}
    start = 0
    for m in marks:
        found = find_trouble(console[start:m.start()])
        if found is not None:
            by_case[int(m[1])] = found
        start = m.end()
    return CaseTrouble(by_case, find_trouble(console[start:]))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def remote_command(argv: Sequence[str], env: Mapping[str, str] | None = None,
                   cwd: str | None = None) -> str:
    """An argv list as one shell-safe command line for sshd to run."""
    words = ["env", *[f"-u{name}" for name in _UNSET]]
    words += [f"{k}={v}" for k, v in (env or {}).items()]
    words += list(argv)
    cmd = shlex.join(words)
    return f"cd {shlex.quote(cwd)} && {cmd}" if cwd else cmd


class Guest:
    def __init__(self, spec: GuestSpec, run_dir: Path, progress: Progress,
                 boot_timeout: float = 240.0, ssh_keys: Path | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.spec = spec
        self.cancel = cancel
        # Where SSH keys are kept across boots (sshkeys); None: vng makes new ones.
        self.ssh_keys = ssh_keys
        self.run_dir = run_dir
        self.progress = progress
        self.boot_timeout = boot_timeout
        self.console_log = run_dir / "console.log"
        self.home = run_dir / "home"
        self.boot_seconds = 0.0
        self.boot_stages: BootStages | None = None
        self.peak_rss_kb = 0
        self._stack = contextlib.ExitStack()
        self._vng: subprocess.Popen[bytes] | None = None
        self._ssh: paramiko.SSHClient | None = None

    # -- lifecycle ----------------------------------------------------------
    def argv(self) -> list[str]:
        return vng_argv(self.spec)

    def __enter__(self) -> Guest:
        self.home.mkdir(parents=True, exist_ok=True)
        proc.require("vng")
        proc.require("qemu-system-x86_64")
        if self.ssh_keys is not None:
            sshkeys.seed(self.ssh_keys, self._ssh_dir())
        try:
            self._vng = self._stack.enter_context(proc.background(
                self.argv(), log_path=self.console_log, cwd=self.run_dir,
                env={"HOME": str(self.home)}))
            self._wait_ready()
        except BaseException:
            if self._ssh is not None:  # connected, but the guest never got ready
                self._ssh.close()
                self._ssh = None
            self._stack.close()
            raise
        if self.ssh_keys is not None:
            sshkeys.keep(self._ssh_dir(), self.ssh_keys)
        return self

    def _ssh_dir(self) -> Path:
        """Where vng keeps the guest's host keys and the client key (under HOME)."""
        return self.home / ".cache" / "virtme-ng" / ".ssh"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self._record_peak_rss()
        if self._ssh is not None:
            with contextlib.suppress(Exception):
                # Immediate power-off; nothing in the guest needs syncing.
                self._ssh.exec_command("echo o > /proc/sysrq-trigger", timeout=5)
            with contextlib.suppress(Exception):
                self._ssh.close()
            self._ssh = None
        if self._vng is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._vng.wait(timeout=5)
        self._stack.close()
        self._vng = None

    def alive(self) -> bool:
        return self._vng is not None and self._vng.poll() is None

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def console_size(self) -> int:
        try:
            return self.console_log.stat().st_size
        except OSError:
            return 0

    def trouble(self, since: int = 0) -> Trouble | None:
        return find_trouble(self.console(), since)

    # -- boot ---------------------------------------------------------------
    def _wait_ready(self) -> None:
        start = time.monotonic()
        key = self._ssh_dir() / "id_virtme"
        seen: dict[str, float] = {}  # host moments for the boot stages
        while True:
            elapsed = time.monotonic() - start
            self._stop_if_cancelled()
            self.progress.status(f"booting ({self.spec.accel.value}) {elapsed:.0f}s")
            if not self.alive():
                raise self.failure("the guest exited during boot")
            console = self.console()
            trouble = find_trouble(console)
            if trouble is not None and trouble.fatal:
                raise self.failure(f"kernel {trouble} during boot", trouble)
            if elapsed > self.boot_timeout:
                raise self.failure(f"no SSH after {self.boot_timeout:.0f}s")
            if "kernel" not in seen and _KERNEL_LINE.search(console):
                seen["kernel"] = elapsed
            if READY_MARK in console:
                seen.setdefault("ready", elapsed)
            # sshd and the network are up once vng's init starts our script
            # (it waits for both): connect while the script runs.
            if (self._ssh is None and (SCRIPT_MARK in console or "ready" in seen)
                    and key.exists()):
                self._try_connect(key)
            if self._ssh is not None and "ready" in seen:
                self.boot_seconds = time.monotonic() - start
                marks = HostMarks(seen.get("kernel"), seen["ready"], self.boot_seconds)
                self.boot_stages = boot_stages(console, marks)
                return
            time.sleep(0.1)

    def _try_connect(self, key: Path) -> bool:
        client = paramiko.SSHClient()
        # The guest's host key is made fresh for this run, on loopback.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=self.spec.ssh_port, username="root",
                           key_filename=str(key), look_for_keys=False, allow_agent=False,
                           timeout=5, banner_timeout=10, auth_timeout=10)
        except (paramiko.SSHException, OSError):
            client.close()
            return False
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(5)
        self._ssh = client
        return True

    def failure(self, what: str, trouble: Trouble | None = None) -> GuestFailure:
        """A GuestFailure naming ``what``, with the console lines that show it."""
        tail = list(trouble.excerpt) if trouble else self.console().splitlines()[-15:]
        excerpt = "\n    ".join(tail)
        return GuestFailure(f"{what}; console ({self.console_log}):\n    {excerpt}",
                            kernel_fault=trouble is not None and trouble.fatal)

    # -- commands -----------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None,
            cwd: str | None = None) -> CommandResult:
        """Run argv in the guest; never raises for a failing or hanging command."""
        if self._ssh is None:
            raise GuestFailure("guest is not connected")
        cmd = remote_command(argv, env, cwd)
        start = time.monotonic()
        try:
            _, stdout, _ = self._ssh.exec_command(cmd, timeout=timeout)
        except (paramiko.SSHException, OSError) as exc:
            return CommandResult(tuple(argv), None, "", f"ssh: {exc}",
                                 time.monotonic() - start)
        chan = stdout.channel
        out, err = bytearray(), bytearray()
        deadline = start + timeout
        while True:
            self._stop_if_cancelled()
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if chan.closed and not chan.exit_status_ready():
                return self._result(argv, None, out, err, start)
            if time.monotonic() > deadline:
                chan.close()
                return self._result(argv, None, out, err, start, timed_out=True)
            time.sleep(0.05)
        return self._result(argv, chan.recv_exit_status(), out, err, start)

    def _stop_if_cancelled(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt("cancelled: the run is stopping")

    def run_checked(self, argv: Sequence[str], *, timeout: float) -> CommandResult:
        """run(), raising GuestFailure if the kernel failed while it ran."""
        mark = self.console_size()
        result = self.run(argv, timeout=timeout)
        trouble = self.trouble(mark)
        if trouble is not None and trouble.fatal:
            # The command's output is all a dead guest would leave otherwise.
            lines = (result.stdout + result.stderr).strip().splitlines()[-20:]
            output = "\n".join(lines)
            raise self.failure(f"kernel {trouble} while the command ran"
                               + (f" (its output:\n{output})" if output else ""), trouble)
        return result

    @staticmethod
    def _result(argv: Sequence[str], rc: int | None, out: bytearray, err: bytearray,
                start: float, timed_out: bool = False) -> CommandResult:
        return CommandResult(tuple(argv), rc, out.decode(errors="replace"),
                             err.decode(errors="replace"), time.monotonic() - start, timed_out)

    def responsive(self, timeout: float = 20.0) -> bool:
        if not self.alive() or self._ssh is None:
            return False
        return self.run(["true"], timeout=timeout).returncode == 0

    def put(self, local: Path, remote: str) -> None:
        with self._sftp() as sftp:
            sftp.put(str(local), remote)

    def get(self, remote: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        with self._sftp() as sftp:
            sftp.get(remote, str(local))

    @contextlib.contextmanager
    def _sftp(self) -> Iterator[paramiko.SFTPClient]:
        if self._ssh is None:
            raise GuestFailure("guest is not connected")
        sftp = self._ssh.open_sftp()
        try:
            yield sftp
        finally:
            sftp.close()

    # -- measurements ---------------------------------------------------------
    def _record_peak_rss(self) -> None:
        if self._vng is None:
            return
        for pid in _group_pids(self._vng.pid):
            status = Path(f"/proc/{pid}/status")
            with contextlib.suppress(OSError):
                text = status.read_text()
                if "qemu-system" in text.split("\n", 1)[0]:
                    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
                    if m:
                        self.peak_rss_kb = max(self.peak_rss_kb, int(m.group(1)))


def boot_with_one_retry(stack: contextlib.ExitStack[bool | None],
                        guest_for: Callable[[int], Guest], progress: Progress) -> Guest:
    """Enter a booted guest made by ``guest_for(attempt)``, on ``stack``.

    A boot that failed without the kernel failing (no SSH in time, QEMU
    gone) is tried once more: seen on 6.12, where udev renamed eth0 while
    DHCP configured it, and on a loaded machine.  A panic or oops during
    boot is the kernel's own result and is raised at once, as is a second
    failure.  The first failure is shown either way.
    """
    try:
        return stack.enter_context(guest_for(1))
    except GuestFailure as exc:
        if exc.kernel_fault:
            raise
        progress.info(f"boot failed, trying once more: {str(exc).splitlines()[0]}")
        return stack.enter_context(guest_for(2))


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids
