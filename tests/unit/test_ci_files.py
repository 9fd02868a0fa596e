"""The CI definitions: the workflow validates, the pipeline's exit code logic."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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
