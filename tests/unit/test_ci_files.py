"""The CI definitions: the workflow validates, the pipeline's exit code logic."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _pipeline() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("ci_pipeline", str(ROOT / "ci" / "pipeline"))
    spec = importlib.util.spec_from_loader("ci_pipeline", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_workflow_validates_against_the_github_schema() -> None:
    res = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                          "vendor.github-workflows", str(ROOT / ".github/workflows/patchgen.yml")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ci_run_is_the_readme_second_command() -> None:
    # The README opens with two code blocks of one command each, before any prose.
    head = (ROOT / "README.md").read_text().split("\n\n## ", 1)[0]
    blocks = [b.split("```", 1)[0].strip() for b in head.split("```sh\n")[1:]]
    assert blocks == ["ci/setup && python3 -m patchgen run", "ci/setup && ci/test"]
    assert head.split("```sh\n", 1)[0].strip() == "# patchgen"
    run_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert run_lines[-1] == blocks[1]


def test_worst_exit_code_wins() -> None:
    worst = _pipeline().worst
    assert worst([0, 0]) == 0
    assert worst([1, 0]) == 1
    assert worst([1, 3]) == 3
    assert worst([3, 4]) == 4
    assert worst([1, 137]) == 4  # killed: an infrastructure failure


def test_the_pipeline_keeps_stage_timings_and_names_a_slowdown(tmp_path: Path) -> None:
    from patchgen.progress import StageTiming
    from patchgen.report import Report

    pipeline = _pipeline()
    hist = tmp_path / "patchgen-history.jsonl"
    report = Report(command="x", started="s", metadata={"tree": "debian-6.1.192"})
    res = {"version": "6.1", "codes": [0], "steps": {"pipeline/test": 700.0}}
    for n, seconds in enumerate((600.0, 610.0, 590.0)):
        report.stages = [StageTiming("selftests (16 runs)", seconds, True)]
        assert pipeline.note_stages(hist, report, res, f"r{n}") == []
    report.stages = [StageTiming("selftests (16 runs)", 1200.0, True)]
    slow = pipeline.note_stages(hist, report, res, "r3")
    assert slow == ["selftests 20m00s, median 10m00s of the last 3 runs (2.0x)"]
    lines = (tmp_path / "patchgen-history-stages.jsonl").read_text().splitlines()
    assert len(lines) == 4 and '"pipeline/test": 700.0' in lines[-1]
    # another shard's runs do other work: they are not compared with these
    from patchgen.shard import Shard, ShardInfo

    report.shard = ShardInfo(Shard(1, 2), (), ())
    assert pipeline.note_stages(hist, report, res, "r4") == []


def test_the_summary_names_a_slowdown() -> None:
    from patchgen.html import RunView

    pipeline = _pipeline()
    res = {"version": "6.1", "codes": [0], "slowdowns": ["selftests 20m00s, median 10m00s of "
                                                         "the last 3 runs (2.0x)"]}
    view = RunView(id="tree-6.1", tree="debian-6.1.192", origin="", check=None, report=None,
                   history={}, error=None)
    text = pipeline.markdown([res], [view])
    assert ("**slower than usual:** selftests 20m00s, median 10m00s of the last 3 runs (2.0x)"
            in text.splitlines())
    assert "slower than usual" not in pipeline.markdown([{**res, "slowdowns": []}], [view])


def test_the_pipeline_passes_a_shard_and_leaves_check_and_bench_to_shard_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _pipeline()
    calls: list[list[str]] = []

    def patchgen(args: list[str], log: Path) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(pipeline, "patchgen", patchgen)
    res = pipeline.run_tree("6.1", tmp_path / "a", "quick", True, 3, None, "2/2")
    assert [c[0] for c in calls] == ["tree", "generate", "test"]
    assert calls[-1][-2:] == ["--shard", "2/2"]
    assert set(res["steps"]) == {"pipeline/tree", "pipeline/generate", "pipeline/test"}
    calls.clear()
    pipeline.run_tree("6.1", tmp_path / "b", "quick", True, 3, None, "1/2")
    assert [c[0] for c in calls] == ["tree", "generate", "check", "test", "bench"]


def _workflow() -> dict[str, Any]:
    from ruamel.yaml import YAML  # check_jsonschema's YAML parser

    data = YAML(typ="safe").load((ROOT / ".github/workflows/patchgen.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_the_workflow_runs_every_shard_of_every_tree_and_merges_them() -> None:
    wf = _workflow()
    jobs = wf["jobs"]
    matrix = jobs["pipeline"]["strategy"]["matrix"]
    assert matrix["shard"] == list(range(1, int(wf["env"]["SHARDS"]) + 1))
    pipeline = " ".join(s.get("run", "") for s in jobs["pipeline"]["steps"])
    assert "--shard ${{ matrix.shard }}/${{ env.SHARDS }}" in pipeline
    upload = next(s for s in jobs["pipeline"]["steps"] if s.get("name") == "Upload reports")
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "patchgen-${{ matrix.tree }}-shard-${{ matrix.shard }}"
    merge = jobs["merge"]
    assert merge["needs"] == "pipeline" and "!cancelled()" in merge["if"]
    assert merge["strategy"]["matrix"]["tree"] == matrix["tree"]
    download = next(s for s in merge["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == "patchgen-${{ matrix.tree }}-shard-*"
    runs = [s["run"] for s in merge["steps"] if "run" in s]
    assert "ci/merge ${{ matrix.tree }} ${{ env.SHARDS }} shards merged" in runs


def _artifacts(tmp_path: Path, *shards: int) -> Path:
    """The shards' artifacts as download-artifact leaves them (ci-out/<tree>/test/...)."""
    from patchgen.report import write_json
    from tests.unit.test_merge import shard_report

    downloads = tmp_path / "shards"
    for i in shards:
        d = downloads / f"patchgen-6.1-shard-{i}" / "6.1" / "test"
        d.mkdir(parents=True)
        write_json(shard_report(i), d / "report.json")
    return downloads


def _ci_merge(tmp_path: Path, downloads: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "PATCHGEN_CACHE": str(tmp_path / "cache"), "PYTHON": sys.executable,
           "GITHUB_STEP_SUMMARY": str(tmp_path / "step.md")}
    return subprocess.run([str(ROOT / "ci" / "merge"), "6.1", "2", str(downloads),
                           str(tmp_path / "merged")], capture_output=True, text=True, env=env)


def test_ci_merge_joins_the_downloaded_shards(tmp_path: Path) -> None:
    res = _ci_merge(tmp_path, _artifacts(tmp_path, 2, 1))
    assert res.returncode == 1, res.stderr  # the sample has a regression
    for name in ("report.json", "junit.xml", "summary.txt"):
        assert (tmp_path / "merged" / name).exists()
    step = (tmp_path / "step.md").read_text()
    assert step.startswith("## 6.1 (merged from 2 shards)") and "merged from 2 shards: 1/2" in step


def test_ci_merge_fails_by_name_when_a_shard_is_missing(tmp_path: Path) -> None:
    res = _ci_merge(tmp_path, _artifacts(tmp_path, 1))
    assert res.returncode == 4
    assert "shard 2/2 is missing (have 1/2)" in res.stderr
    none = _ci_merge(tmp_path, tmp_path / "empty")
    assert none.returncode == 4
    assert "no shard of tree 6.1 came back (expected 2)" in none.stderr


def test_the_full_matrix_runs_one_config_per_runner_and_is_joined() -> None:
    """workflow_dispatch with matrix=full: every config of kernel-config/matrix.toml
    on its own runner, each generating the same commits (one date and author),
    then one table per tree (patchgen merge of the check runs)."""
    from patchgen import matrix as kmatrix

    wf = _workflow()
    on = wf["on"]
    assert on["workflow_dispatch"]["inputs"]["matrix"]["default"] == "quick"
    job = wf["jobs"]["full-matrix"]
    assert job["if"] == "${{ github.event.inputs.matrix == 'full' }}"
    configs = [c.name for c in kmatrix.load(ROOT / "kernel-config")]
    assert job["strategy"]["matrix"]["config"] == configs
    assert job["strategy"]["matrix"]["tree"] == wf["jobs"]["pipeline"]["strategy"]["matrix"]["tree"]
    run = " ".join(s.get("run", "") for s in job["steps"])
    assert '--date "$date"' in run and "--author" in run
    assert "--configs '${{ matrix.config }}'" in run
    join = wf["jobs"]["full-matrix-join"]
    assert join["needs"] == "full-matrix" and "!cancelled()" in join["if"]
    download = next(s for s in join["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["pattern"] == "patchgen-check-${{ matrix.tree }}-*"
    assert any("patchgen merge" in s.get("run", "") for s in join["steps"])
