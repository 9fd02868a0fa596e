"""--output: a command writes only where nothing can be lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen import outputs, settings, stages
from patchgen.cli import main
from patchgen.errors import ExitCode, UserError


def test_new_or_empty_directories_are_taken(tmp_path: Path) -> None:
    assert outputs.check(tmp_path / "new", "test") == (tmp_path / "new").resolve()
    (tmp_path / "empty").mkdir()
    assert outputs.check(tmp_path / "empty", "test") == (tmp_path / "empty").resolve()


def test_a_file_or_a_full_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a directory"):
        outputs.check(tmp_path / "f", "test")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "report.json").write_text("{}")
    with pytest.raises(UserError, match="exists and is not empty") as info:
        outputs.check(tmp_path / "d", "merge")
    assert info.value.exit_code == ExitCode.USER_ERROR


def test_only_a_replaceable_command_may_reuse_its_own_directory(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "0001.patch").write_text("x")
    outputs.mark(d, "prep")
    assert outputs.check(d, "prep", replaceable=True) == d.resolve()
    with pytest.raises(UserError):
        outputs.check(d, "prep")  # not replaceable: never
    with pytest.raises(UserError):
        outputs.check(d, "bench", replaceable=True)  # another command's


def test_a_run_directory_never_lands_on_an_earlier_result(tmp_path: Path) -> None:
    """test --output on a finished run saved an empty report over it before
    the request was even checked; merge --output on a shard's run replaced
    the shard's report."""
    s = settings.load(tmp_path / "cache")
    good = tmp_path / "goodrun"
    good.mkdir()
    (good / "report.json").write_text('{"tests": ["33 of them"]}')
    with pytest.raises(UserError):
        stages.new_run_dir(s, "test", good)
    assert (good / "report.json").read_text() == '{"tests": ["33 of them"]}'


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path: Path) -> None:
    s = settings.load(tmp_path / "cache")
    dirs = {stages.new_run_dir(s, "merge", None) for _ in range(3)}
    assert len(dirs) == 3 and all(d.is_dir() for d in dirs)


def test_merge_into_a_shards_run_is_refused(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_merge import shard_report, write

    one, two = write(tmp_path, shard_report(1), shard_report(2))
    before = (one / "report.json").read_text()
    code = main(["--cache", str(tmp_path / "cache"), "merge", str(one), str(two),
                 "--output", str(one)])
    assert code == ExitCode.USER_ERROR
    assert "exists and is not empty" in capsys.readouterr().err
    assert (one / "report.json").read_text() == before
