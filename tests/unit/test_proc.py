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
