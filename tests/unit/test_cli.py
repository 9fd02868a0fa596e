"""The CLI maps errors to documented exit codes with a one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.cli import build_parser, main
from patchgen.errors import ExitCode


def test_unknown_version_exit_code_and_message(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path), "tree", "--version", "4.19"])
    assert rc == ExitCode.USER_ERROR
    err = capsys.readouterr().err
    assert "patchgen: error: unknown kernel version '4.19'" in err
    assert "hint: or give your own kernel git tree with --tree PATH" in err


def test_not_a_kernel_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path / "c"), "test", "--tree", str(tmp_path)])
    assert rc == ExitCode.USER_ERROR
    assert "not a kernel tree" in capsys.readouterr().err


def test_tree_prints_facts_for_a_user_tree(fakelinux: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path / "c"), "tree", "--tree", str(fakelinux)])
    assert rc == 0
    out = capsys.readouterr().out
    assert '"version": "6.1.99"' in out
    assert '"nf_reinject_file": "net/netfilter/nf_queue.c"' in out


def test_version_and_tree_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["test", "--version", "6.1", "--tree", "/x"])
    assert info.value.code == 2


def test_exit_codes_are_distinct() -> None:
    """Iterating an Enum skips its aliases: count the declared names instead."""
    declared = ExitCode.__members__
    assert len({int(c) for c in declared.values()}) == len(declared)


@pytest.mark.parametrize("argv", [["generate", "--plan", "--verbose"],
                                  ["generate", "--plan", "-v"],
                                  ["-v", "generate", "--plan"]])
def test_verbose_is_accepted_where_the_plan_mentions_it(argv: list[str]) -> None:
    """format_plan says '(--verbose shows them)' after 'generate --plan'."""
    ns = build_parser().parse_args(argv)
    assert ns.verbose is True


def test_verbose_stays_off_unless_asked() -> None:
    assert build_parser().parse_args(["generate", "--plan"]).verbose is False


def test_a_full_disk_anywhere_is_an_infrastructure_failure_that_says_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    from patchgen import cli

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report.json"))

    monkeypatch.setattr(cli, "cmd_tree", full)
    rc = main(["--cache", str(tmp_path), "tree"])
    assert rc == ExitCode.INFRA_FAILURE
    err = capsys.readouterr().err
    assert f"patchgen: error: no space left on device writing {tmp_path / 'report.json'}" in err
    assert "free now" in err and "--cache" in err


def test_ctrl_c_while_python_imports_patchgen_is_an_interrupt_not_a_traceback() -> None:
    """'python3 -m patchgen' spends its first half second importing; a
    Ctrl-C then is the same interrupt (exit 130, one line) as any later."""
    import subprocess
    import sys
    code = """
import importlib.abc, runpy, sys
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "patchgen.settings":
            raise KeyboardInterrupt
        return None
sys.meta_path.insert(0, Interrupt())
runpy.run_module("patchgen", run_name="__main__")
"""
    res = subprocess.run([sys.executable, "-c", code, "tree"], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert res.returncode == int(ExitCode.INTERRUPTED), res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr == "patchgen: interrupted; nothing half-made was kept\n"
