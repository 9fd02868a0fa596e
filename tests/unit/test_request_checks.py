"""A test request is checked when it is made, before any tree, build or guest work.

A typo in --tests used to surface after the kernel build and the kselftest
install (10+ minutes).  'patchgen test' and 'run' are driven in-process
here with every stage that does work replaced by a tripwire: the request
must be refused before any of them is reached.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchgen import stages
from patchgen.cli import main
from patchgen.commands import test as test_cmd
from patchgen.errors import ExitCode, UserError
from patchgen.tree import TreeRequest

MAKEFILE = """\
TEST_PROGS := nft_meta.sh nft_nat.sh \\
\tconntrack_vrf.sh
TEST_PROGS += nft_queue.sh
TEST_GEN_PROGS = conntrack_dump_flush
TEST_GEN_FILES = nf-queue
"""


@pytest.fixture
def tree(fakelinux: Path) -> Path:
    """The fake tree with a netfilter selftests directory."""
    d = fakelinux / "tools" / "testing" / "selftests" / "netfilter"
    d.mkdir(parents=True)
    (d / "Makefile").write_text(MAKEFILE)
    subprocess.run(["git", "-C", str(fakelinux), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(fakelinux), "commit", "-qm", "selftests"], check=True)
    return fakelinux


@pytest.fixture
def tripwires(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every stage that does work records that it was reached, and stops."""
    reached: list[str] = []

    def tripwire(name: str):  # type: ignore[no-untyped-def]
        def stage(*args: object, **kwargs: object) -> None:
            reached.append(name)
            raise AssertionError(f"{name} reached: the request was not checked first")
        return stage

    for name in ("stage_tree", "stage_build", "stage_selftests_install", "new_run_dir"):
        monkeypatch.setattr(stages, name, tripwire(name))
    return reached


@pytest.mark.parametrize("command", ["test", "run"])
def test_a_test_name_typo_is_refused_first_with_close_matches(
        command: str, tree: Path, tmp_path: Path, tripwires: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path / "c"), command, "--tree", str(tree),
               "--tests", "nft_meta.sh,nft_mata.sh"])
    err = capsys.readouterr().err
    assert rc == ExitCode.USER_ERROR, err
    assert "patchgen: error: unknown test 'nft_mata.sh' in this tree" in err
    assert "hint: did you mean: nft_meta.sh, " in err  # the closest first
    assert tripwires == []


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--switch", "2", "--switch takes 0, 1 or both (1,0), got '2'"),
    ("--switch", "", "--switch takes 0, 1 or both (1,0), got ''"),
    ("--tests", "", "--tests is empty"),
    ("--tests", "quik", "unknown test 'quik' in this tree"),
    ("--retries", "-1", "--retries must be 0 or more, got -1"),
    ("--cpus", "0", "--cpus must be 1 or more, got 0"),
    ("--memory", "lots", "--memory must be a size like 2G or 512M, got 'lots'"),
    ("--churn", "-5", "--churn must be 0 or more, got -5"),
])
def test_every_field_is_checked_before_any_work(
        option: str, value: str, message: str, tree: Path, tmp_path: Path,
        tripwires: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path / "c"), "test", "--tree", str(tree), option, value])
    err = capsys.readouterr().err
    assert rc == ExitCode.USER_ERROR, err
    assert f"patchgen: error: {message}" in err
    assert tripwires == []


def test_a_tier_or_known_names_pass(tree: Path, tmp_path: Path) -> None:
    from patchgen import settings

    s = settings.load(tmp_path / "c")
    for tests in ("quick", "default", "all", "nft_nat.sh, conntrack_vrf.sh",
                  "conntrack_dump_flush"):
        req = test_cmd.TestRequest(tree=TreeRequest(path=tree), tests=tests)
        test_cmd.check_test_request(req, s)  # no error


def test_the_request_itself_refuses_bad_fields() -> None:
    with pytest.raises(UserError, match="--switch takes 0, 1 or both"):
        test_cmd.TestRequest(tree=TreeRequest(), switch="1,x")
    with pytest.raises(UserError, match="--accel must be auto, kvm or tcg"):
        test_cmd.TestRequest(tree=TreeRequest(), accel="hvf")


def test_selftest_names_of_a_makefile() -> None:
    from patchgen.kselftest import makefile_tests

    assert makefile_tests(MAKEFILE) == ["nft_meta.sh", "nft_nat.sh", "conntrack_vrf.sh",
                                        "nft_queue.sh", "conntrack_dump_flush"]
