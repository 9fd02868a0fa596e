"""The order of the data-plane steps in one bench boot."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path
from typing import Any

import pytest

from patchgen import bench
from patchgen.commands import bench as bench_cmd
from patchgen.progress import Progress
from patchgen.series import generate
from patchgen.settings import Settings
from patchgen.tree import TreeRequest

ROOT = Path(__file__).resolve().parents[2]


class _Guest:
    def run(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "")


def test_forwarding_runs_before_the_nf_hook_module(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """The nf_hook() overflow step leaves hooks and programs behind that moved
    later forwarding rounds between two levels 2 % apart: forwarding comes first."""
    steps: list[str] = []

    def micro(*args: Any, **_: Any) -> tuple[dict[str, dict[int, list[float]]], list[float]]:
        steps.append("overflow" if len(args) > 7 and args[7] else "micro")
        return {"1": {}, "0": {}}, []

    def fwd(*_: Any, **__: Any) -> tuple[dict[tuple[str, str], list[float]], str]:
        steps.append("forwarding")
        return {}, ""

    monkeypatch.setattr(bench, "run_micro", micro)
    monkeypatch.setattr(bench, "run_fwd", fwd)
    req = bench_cmd.BenchRequest(TreeRequest())
    result = bench.BenchResult(accel="tcg")
    runtime = generate.load_spec(ROOT / "templates").runtime
    progress = Progress(stream=io.StringIO(), quiet=True)
    guest: Any = _Guest()
    bench_cmd._bench_data_plane(result, "retpoline", guest, Path("m.ko"), req, True,
                                Settings(tmp_path, 2), progress, runtime)
    assert steps == ["forwarding", "micro", "overflow"]
