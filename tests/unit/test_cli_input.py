"""Bad input a new user gives in the first hour (a helper's probe): refused
before any work, exit 2, with a message; never a traceback, never exit 1
(which means test failures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from patchgen import cli
from patchgen.check import parse_range
from patchgen.cli import build_parser, main
from patchgen.errors import ExitCode, UserError


@pytest.mark.parametrize("argv", [
    ["--cache", "", "tree"],
    ["tree", "--tree", ""],
    ["check", "--output", ""],
    ["generate", "--author", ""],
    ["generate", "--branch", ""],
    ["check", "--patches", ""],
    ["tree", "--tree", "~nosuchuser-patchgen/x"],
    ["--cache", "~nosuchuser-patchgen/c", "tree"],
])
def test_empty_or_unexpandable_values_are_refused(argv: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """An empty --cache wrote runs/ into the current directory, an empty
    --author or --branch meant the default, and ~unknownuser ended in a
    RuntimeError traceback."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_a_tilde_in_any_path_option_is_the_home_directory() -> None:
    """--output expanded ~ but --cache and durations --output made a
    directory named "~" in the current one."""
    ns = build_parser().parse_args(["--cache", "~/c", "durations", "r", "--output", "~/x.toml"])
    home = Path(os.path.expanduser("~"))
    assert ns.cache == home / "c" and ns.output == home / "x.toml"


@pytest.mark.parametrize("text, why", [
    ("1-", "6-9"), ("5-3", "reversed"), ("0-2", "has 9 patches"), ("3-12", "has 9 patches"),
    # The hints were themselves refused: "did you mean -3-1?", "1-999...".
    ("1--3", "6-9"), ("-3", "6-9"), ("99999999999999999999-1", "has 9 patches"),
])
def test_patch_ranges_that_mean_nothing_are_refused(text: str, why: str) -> None:
    with pytest.raises(UserError, match=why):
        parse_range(text, 9)


def test_check_accel_without_boot_is_refused() -> None:
    """It was silently ignored."""
    from patchgen.commands.check import CheckRequest
    from patchgen.tree import TreeRequest

    with pytest.raises(UserError, match="--accel tcg chooses how --boot boots"):
        CheckRequest(TreeRequest(), accel="tcg")
    CheckRequest(TreeRequest(), accel="tcg", boot=True)


def test_an_unexpected_error_is_not_a_test_failure(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A bug is reported as one, with its traceback, and exit 4: exit 1
    would tell CI that tests failed."""
    def boom(*args: object) -> int:
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(cli, "cmd_tree", boom)
    rc = main(["--cache", str(tmp_path), "tree"])
    err = capsys.readouterr().err
    assert rc == ExitCode.INFRA_FAILURE
    assert "internal error" in err and "IndexError" in err


def test_an_output_under_a_file_is_bad_input(tmp_path: Path) -> None:
    """It was "Not a directory", exit 4, from a mkdir half way through."""
    from patchgen import outputs

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        outputs.check(afile / "sub" / "dir", "test")


def test_run_refuses_a_bad_output_before_it_commits_the_series(
        fakelinux: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """run generated and committed the series branch, then test refused the
    --output: the user's branch was replaced for nothing."""
    import subprocess

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("mine")
    before = subprocess.run(["git", "-C", str(fakelinux), "branch", "--list"],
                            capture_output=True, text=True, check=True).stdout
    rc = main(["--cache", str(tmp_path / "c"), "run", "--tree", str(fakelinux),
               "--output", str(full), "--author", "Test User <test@example.org>"])
    assert rc == ExitCode.USER_ERROR
    assert "not empty" in capsys.readouterr().err
    after = subprocess.run(["git", "-C", str(fakelinux), "branch", "--list"],
                           capture_output=True, text=True, check=True).stdout
    assert after == before


def test_a_test_without_attempts_is_a_malformed_run_file() -> None:
    """merge crashed on it (IndexError, exit 1)."""
    from patchgen.results import TestResult
    from patchgen.runfile import RunFileError, parse

    bad: dict[str, object] = {"name": "x.sh", "outcome": "pass", "attempts": [], "expected": None,
           "why_expected": "", "variant": ""}
    with pytest.raises(RunFileError, match="no attempts"):
        parse(bad, TestResult.from_dict, 1, "report.json")


def test_a_tier_among_test_names_is_said_so() -> None:
    """"unknown test 'quick' ... did you mean: quick" helped nobody."""
    from patchgen.kselftest import Catalogue, check_selection

    with pytest.raises(UserError, match="a tier stands alone") as info:
        check_selection(Catalogue(60, {}, {"quick": ("nft_meta.sh",)}), ["nft_meta.sh"],
                        "quick,nft_meta.sh")
    assert "did you mean" not in str(info.value.hint)


def test_check_without_the_series_branch_says_to_generate_it(tmp_path: Path) -> None:
    import subprocess
    from typing import Any, cast

    from patchgen.check import series_commits

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    tree = cast(Any, type("Tree", (), {"repo": tmp_path, "base": "HEAD"}))
    with pytest.raises(UserError) as info:
        series_commits(tree, "patchgen/nf-hook-bpf", None)
    assert "patchgen generate" in str(info.value.hint)
