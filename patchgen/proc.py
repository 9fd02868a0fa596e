"""The one door for subprocesses.

Every external command goes through here: argv lists only (never a shell),
an explicit ``cwd`` (never ``os.chdir``), the command line logged, and a
typed result or a typed error.  Children are started in their own session:
they have no terminal to ask the user anything on, and Ctrl-C reaches them
through us, so that no child outlives patchgen (a timeout kills the whole
tree too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from patchgen.errors import CommandFailed, CommandTimeout, MissingTool

log = logging.getLogger("patchgen.proc")

# Debian package that provides each tool we call, for the error hint.
TOOL_PACKAGES: Mapping[str, str] = {
    "git": "git",
    "make": "make",
    "gcc": "gcc",
    "ccache": "ccache",
    "qemu-system-x86_64": "qemu-system-x86",
    "vng": "(pip) virtme-ng",
    "busybox": "busybox",
    "sshd": "openssh-server",
    "perl": "perl",
    "apt-get": "apt",
    "dpkg-deb": "dpkg",
    "tar": "tar",
    "xz": "xz-utils",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
}


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float


def require(tool: str) -> str:
    """Return the path of ``tool`` or raise MissingTool with an install hint."""
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(tool, TOOL_PACKAGES.get(tool))
    return path


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    if env is None:
        return None
    merged = dict(os.environ)
    merged.update(env)
    return merged


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> Completed:
    """Run a command to completion and capture its output.

    The child has no terminal (its own session, stdin empty or ``input``),
    so nothing can ask the user a question; and it never outlives the call:
    on Ctrl-C it gets SIGINT to clean up after itself (git removes its lock
    files and half-made worktrees), then is killed if it does not exit.
    """
    args = [str(a) for a in argv]
    log.debug("run: %s%s", shlex.join(args), f"  (in {cwd})" if cwd else "")
    start = time.monotonic()
    with _child(args, cwd, env, input is not None) as child:
        try:
            out, err = child.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(args, timeout or 0) from exc
    result = Completed(args, child.returncode, out, err, time.monotonic() - start)
    if check and child.returncode != 0:
        raise CommandFailed(args, child.returncode, out, err)
    return result


@contextlib.contextmanager
def _child(args: list[str], cwd: Path | None, env: Mapping[str, str] | None,
           has_input: bool) -> Iterator[subprocess.Popen[str]]:
    """A started child that is stopped and reaped, whatever happens, on leaving.

    Ctrl-C (or SIGTERM) arriving while the child is being started is held
    until Popen() has returned: raised inside it, the pid is lost and the
    child runs on unseen (generate's commit phase wrote a temporary index
    into a directory that was being removed).
    """
    child: subprocess.Popen[str] | None = None
    # The ``with`` is inside the ``try``: a held Ctrl-C is acted on as the
    # handlers come back, before any statement after the ``with`` runs.
    try:
        with _signals_held() as pending:
            try:
                child = subprocess.Popen(
                    args, cwd=cwd, env=_merged_env(env),
                    stdin=subprocess.PIPE if has_input else subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
                    start_new_session=True)
            except FileNotFoundError as exc:
                raise MissingTool(args[0], TOOL_PACKAGES.get(Path(args[0]).name)) from exc
        _deliver(pending)
        yield child
    finally:
        if child is not None:
            _reap(child)


def _reap(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        _stop(child)
    child.wait()
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            stream.close()


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


@contextlib.contextmanager
def undivided(make: Callable[[], T], undo: Callable[[T], None]) -> Iterator[T]:
    """``make()`` something, ``undo(it)`` on leaving; Ctrl-C cuts neither in half.

    A Ctrl-C (or SIGTERM) during either is acted on right after it: once
    the thing exists it is always undone, so an interrupted run leaves
    nothing behind (a temporary directory made by mkdtemp() but not yet
    handed to the code that removes it, say).
    """
    made: list[T] = []
    # As in _child(): the ``with`` inside the ``try``, so that a Ctrl-C acted
    # on as the handlers come back still finds the thing to undo.
    try:
        with _signals_held() as pending:
            made.append(make())
        _deliver(pending)
        yield made[0]
    finally:
        if made:
            with uninterrupted():
                undo(made[0])


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """A short step that Ctrl-C (or SIGTERM) must not cut in half: the signal
    is acted on right after it."""
    with _signals_held() as pending:
        yield
    _deliver(pending)


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Record SIGINT/SIGTERM instead of acting on them; the caller delivers them."""
    pending: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield pending  # Python runs signal handlers in the main thread only
        return

    def hold(signum: int, frame: object) -> None:
        pending.append(signum)

    old = {sig: signal.signal(sig, hold) for sig in HELD_SIGNALS}
    try:
        yield pending
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _deliver(pending: list[int]) -> None:
    """Act on held signals now, with the handlers that were held back."""
    for sig in dict.fromkeys(pending):
        signal.raise_signal(sig)


def _stop(child: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGINT first (the child's own clean-up runs), then TERM and KILL."""
    with _signals_held() as pending:  # a second Ctrl-C must not leave the child running
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGINT)
        if not _group_gone(child, grace):
            kill_group(child)
    _deliver(pending)


def kill_group(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """Terminate a child started with ``start_new_session`` and all it spawned.

    Waiting for the child alone is not enough: vng may be gone while QEMU,
    in the same group, is still shutting down.  Returns once the group is
    empty (SIGKILL after ``grace`` seconds).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # nobody left in the group
        if _group_gone(proc, grace):
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


def _group_gone(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        proc.poll()  # reap our child: a zombie still counts as a group member
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def stream(
    argv: Sequence[str],
    *,
    log_path: Path,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run a long command, teeing stdout+stderr into ``log_path`` line by line.

    The log is complete even when the caller is interrupted: every line is
    flushed as it arrives and the child is killed in ``finally``.  ``stdout``
    of the result holds only the last 200 lines (the log has everything).
    """
    args = [str(a) for a in argv]
    log.debug("stream: %s > %s", shlex.join(args), log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    tail: list[str] = []
    timed_out = threading.Event()
    with log_path.open("a", encoding="utf-8") as logf:
        logf.write(f"$ {shlex.join(args)}\n")
        logf.flush()
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=_merged_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise MissingTool(args[0], TOOL_PACKAGES.get(Path(args[0]).name)) from exc
        timer = _start_timer(proc, timeout, timed_out)
        try:
            _pump(proc.stdout, logf, tail, on_line)
            proc.wait()
        finally:
            if timer is not None:
                timer.cancel()
            kill_group(proc)
    if timed_out.is_set():
        raise CommandTimeout(args, timeout or 0)
    out = "".join(tail)
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, out, "")
    return Completed(args, proc.returncode, out, "", time.monotonic() - start)


def _start_timer(
    proc: subprocess.Popen[str], timeout: float | None, flag: threading.Event
) -> threading.Timer | None:
    if timeout is None:
        return None

    def expire() -> None:
        flag.set()
        kill_group(proc)

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def _pump(
    src: IO[str] | None,
    logf: IO[str],
    tail: list[str],
    on_line: Callable[[str], None] | None,
) -> None:
    if src is None:
        return
    for line in src:
        logf.write(line)
        logf.flush()
        tail.append(line)
        if len(tail) > 200:
            del tail[0]
        if on_line is not None:
            on_line(line.rstrip("\n"))


@contextlib.contextmanager
def background(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a long-lived child (a VM) writing into ``log_path``; kill it on exit.

    The child gets its own process group, so leaving the ``with`` block for
    any reason (an exception, Ctrl-C) takes down everything it started.
    Its output reaches the log through a pipe: QEMU (under vng) reopens
    /proc/self/fd/1 and 2 once per chardev, each at offset 0, and on a
    regular file those writers overwrite one another; a pipe has no offset.
    """
    args = [str(a) for a in argv]
    log.debug("background: %s > %s", shlex.join(args), log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as logf:
        logf.write(f"$ {shlex.join(args)}\n".encode())
        logf.flush()
        try:
            proc = subprocess.Popen(
                args,
                cwd=cwd,
                env=_merged_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise MissingTool(args[0], TOOL_PACKAGES.get(Path(args[0]).name)) from exc
        copier = threading.Thread(target=_copy_raw, args=(proc.stdout, logf), daemon=True)
        copier.start()
        try:
            yield proc
        finally:
            kill_group(proc)
            copier.join(timeout=5)


def _copy_raw(src: IO[bytes] | None, dst: IO[bytes]) -> None:
    """Copy as it comes (the log is read while the guest runs)."""
    if src is None:
        return
    fd = src.fileno()
    with contextlib.suppress(OSError, ValueError):  # the log closed under a straggler
        while chunk := os.read(fd, 65536):
            dst.write(chunk)
            dst.flush()
