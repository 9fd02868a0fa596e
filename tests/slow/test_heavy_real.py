"""Heavy real cases (ci/test --heavy): the full selftest list, and the 6.12 tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.slow.conftest import USER, patchgen

pytestmark = [pytest.mark.slow, pytest.mark.heavy]


def test_61_default_selftests_match_expectations_at_the_tip(tmp_path: Path) -> None:
    res = patchgen("run", "--tests", "default", "--output", str(tmp_path), timeout=3 * 3600)
    assert res.returncode == 0, res.stdout[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["regressions"] == []
    assert report["summary"]["failed_without_expectation"] == []
    assert {t["variant"] for t in report["tests"] if t["variant"]} == {"nf_hook_bpf=1",
                                                                       "nf_hook_bpf=0"}


def test_612_series_generates_builds_and_passes_quick_selftests(tmp_path: Path) -> None:
    gen = patchgen("generate", "--version", "6.12", "--author", USER, timeout=3600)
    assert gen.returncode == 0, gen.stderr
    check = patchgen("check", "--version", "6.12", "--output", str(tmp_path / "check"),
                     timeout=4 * 3600)
    assert check.returncode == 0, check.stdout[-4000:]
    res = patchgen("test", "--version", "6.12", "--rev", "patchgen/nf-hook-bpf", "--tests",
                   "quick", "--output", str(tmp_path / "test"), timeout=3 * 3600)
    assert res.returncode == 0, res.stdout[-4000:]


def test_a_broken_patch_is_named_with_the_build_failure_exit_code(tmp_path: Path) -> None:
    branch = "patchgen/broken-build"
    assert patchgen("generate", "--branch", branch, "--author", USER, "--inject-fault",
                    "build").returncode == 0
    res = patchgen("check", "--branch", branch, "--no-w1", "--patches", "5-6", "--output",
                   str(tmp_path), timeout=3600)
    assert res.returncode == 3, res.stdout[-2000:]
    assert "first patch that does not build: 6 netfilter: add bpf base hook program generator" \
        in res.stdout
    assert "FAULT INJECTED" in res.stdout


@pytest.mark.parametrize("fault", ["skip-hook", "verdict"])
def test_a_wrong_generator_fails_the_equivalence_suite(tmp_path: Path, fault: str) -> None:
    branch = f"patchgen/broken-{fault}"
    assert patchgen("generate", "--branch", branch, "--author", USER, "--inject-fault",
                    fault).returncode == 0
    res = patchgen("test", "--rev", branch, "--tests", "nft_meta.sh", "--switch", "1,0",
                   "--output", str(tmp_path), timeout=3 * 3600)
    assert res.returncode == 1, res.stdout[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    bad = [t["name"] for t in report["tests"] if t["name"].startswith("equiv:")
           and t["outcome"] != "pass"]
    assert bad, "the equivalence cases did not notice the broken generator"
