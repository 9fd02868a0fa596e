from __future__ import annotations

import time
from pathlib import Path

import pytest

from patchgen import proc
from patchgen.errors import CommandFailed, CommandTimeout, MissingTool


def test_run_captures_and_raises_with_result() -> None:
    assert proc.run(["sh", "-c", "echo out; echo err >&2"]).stdout == "out\n"
    with pytest.raises(CommandFailed) as info:
        proc.run(["sh", "-c", "echo oops >&2; exit 3"])
    assert info.value.returncode == 3
    assert "oops" in info.value.message


def test_missing_tool_has_install_hint() -> None:
    with pytest.raises(MissingTool):
        proc.run(["patchgen-no-such-tool"])
    with pytest.raises(MissingTool) as info:
        proc.require("busybox-not-here")
    assert "required tool not found" in info.value.message


def test_stream_tees_every_line_and_calls_back(tmp_path: Path) -> None:
    seen: list[str] = []
    log = tmp_path / "x.log"
    proc.stream(["sh", "-c", "echo a; echo b >&2; echo c"], log_path=log, on_line=seen.append)
    assert seen == ["a", "b", "c"] or sorted(seen) == ["a", "b", "c"]
    text = log.read_text()
    assert text.startswith("$ sh -c ")
    assert "a\n" in text and "c\n" in text


def test_stream_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    marker = tmp_path / "child-alive"
    script = f"(sleep 3; touch {marker}) & sleep 30"
    start = time.monotonic()
    with pytest.raises(CommandTimeout):
        proc.stream(["sh", "-c", script], log_path=tmp_path / "l", timeout=0.5)
    assert time.monotonic() - start < 10
    time.sleep(3.5)
    assert not marker.exists(), "a grandchild survived the timeout"


def test_background_kills_group_on_exception(tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    with pytest.raises(RuntimeError), proc.background(
            ["sh", "-c", f"(sleep 2; touch {marker}) & sleep 30"], log_path=tmp_path / "l"):
        raise RuntimeError("boom")
    time.sleep(2.5)
    assert not marker.exists()


def test_background_log_survives_writers_that_reopen_stdout(tmp_path: Path) -> None:
    # QEMU's file chardevs reopen /proc/self/fd/1 (O_TRUNC, offset 0).
    log = tmp_path / "console.log"
    script = "echo kernel line one; echo script output > /proc/self/fd/1; echo kernel line two"
    with proc.background(["sh", "-c", script], log_path=log) as child:
        child.wait(timeout=10)
    time.sleep(0.2)
    text = log.read_text()
    assert text.startswith("$ sh -c ")
    for line in ("kernel line one", "script output", "kernel line two"):
        assert line + "\n" in text, text


def test_ctrl_c_while_a_child_starts_stops_that_child(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The interrupt lands after fork, before Popen() returns (generate's race).

    subprocess.run() then never learns the child's pid: the child ran on and
    wrote into a temporary directory that was being removed.
    """
    import os
    import signal
    import subprocess

    late = tmp_path / "late"
    real = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def started_then_ctrl_c(self: subprocess.Popen[str], *args: object, **kw: object) -> None:
        real(self, *args, **kw)  # the child runs from here on
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", started_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        proc.run(["sh", "-c", f"sleep 0.5; touch {late}"])
    monkeypatch.undo()
    time.sleep(1.0)
    assert not late.exists(), "the child outlived the interrupted run"


def test_ctrl_c_gives_the_child_its_sigint_to_clean_up(tmp_path: Path) -> None:
    """git removes its lock files and half-made worktrees on SIGINT, not on SIGKILL."""
    import os
    import signal
    import threading

    cleaned = tmp_path / "cleaned"
    # Bounded (10 s), so a lost SIGINT fails the test instead of hanging it.
    script = (f"trap 'touch {cleaned}; exit 130' INT; "
              "i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done")
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        proc.run(["sh", "-c", script])
    assert cleaned.exists()


def test_children_get_no_terminal() -> None:
    """No child can ask the user anything: it has no controlling terminal, even
    when patchgen has one (here: a pty)."""
    import contextlib
    import os
    import pty
    import select
    import signal
    import sys

    code = ("from patchgen import proc\n"
            "r = proc.run(['sh', '-c', 'exec 3</dev/tty && echo opened-tty'], check=False)\n"
            "print('rc', r.returncode, r.stdout.strip())\n"
            "print('stdin', repr(proc.run(['sh', '-c', 'cat']).stdout))\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(Path(__file__).resolve().parents[2])
        os.execv(sys.executable, [sys.executable, "-c", code])
    out = b""
    deadline = time.monotonic() + 20
    done = False
    while not done and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            with contextlib.suppress(OSError):
                out += os.read(fd, 4096)
        done = os.waitpid(pid, os.WNOHANG)[0] != 0
    if not done:
        os.kill(pid, signal.SIGKILL)  # a child still reads the terminal
        os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        out += os.read(fd, 4096)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "opened-tty" not in text and "rc 0" not in text, text
    assert "stdin ''" in text, text


def _ctrl_c_as_handlers_return(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C held back while something is made is acted on the moment the
    handlers come back: before the code after the ``with`` runs."""
    import contextlib
    from collections.abc import Iterator

    real = proc._signals_held
    fired: list[bool] = []

    @contextlib.contextmanager
    def late() -> Iterator[list[int]]:
        with real() as pending:
            yield pending
        if not fired:
            fired.append(True)
            raise KeyboardInterrupt

    monkeypatch.setattr(proc, "_signals_held", late)


def test_undivided_undoes_what_it_made_when_ctrl_c_lands_as_handlers_return(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen as a flaky fault-matrix row: a temporary index directory left behind."""
    undone: list[str] = []
    _ctrl_c_as_handlers_return(monkeypatch)
    with pytest.raises(KeyboardInterrupt), proc.undivided(lambda: "made", undone.append):
        pass
    assert undone == ["made"]


def test_a_child_is_stopped_when_ctrl_c_lands_as_handlers_return(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    late = tmp_path / "late"
    _ctrl_c_as_handlers_return(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        proc.run(["sh", "-c", f"sleep 0.5; touch {late}"])
    monkeypatch.undo()
    time.sleep(1.0)
    assert not late.exists(), "the child outlived the interrupted run"
