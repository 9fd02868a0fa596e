"""patchgen merge of check runs: one matrix built in parts (check --configs A
on one machine, --configs B on another) joined into one patch x config table."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.check import CheckReport, join_reports
from patchgen.cli import main
from patchgen.errors import ExitCode, UserError
from patchgen.report import write_json
from patchgen.runfile import write
from tests.unit.test_check_format import _patch

BASE = "b" * 40
ORDER = ["selftests", "nf_hook_bpf=n", "xfrm=n", "ipv6=n", "arm64"]


def _part(configs: list[str], numbers: range = range(1, 4), first_failure: int | None = None,
          tree: str = "debian-6.1.192") -> CheckReport:
    patches = [_patch(n, configs, ok=n != first_failure) for n in numbers]
    return CheckReport(tree, BASE, "patchgen/nf-hook-bpf", patches, first_failure,
                       configs=configs)


def test_the_parts_make_one_table_in_the_matrix_order() -> None:
    joined = join_reports([(Path("a"), _part(["arm64", "xfrm=n"])),
                           (Path("b"), _part(["selftests"]))], ORDER)
    assert joined.configs == ["selftests", "xfrm=n", "arm64"]
    assert [b.variant for b in joined.patches[0].builds] == ["selftests", "xfrm=n", "arm64"]
    assert joined.first_failure is None and joined.exit_code == ExitCode.OK


def test_a_part_that_stopped_at_a_patch_stops_the_whole() -> None:
    joined = join_reports([(Path("a"), _part(["arm64"], range(1, 3), first_failure=2)),
                           (Path("b"), _part(["selftests"]))], ORDER)
    assert joined.first_failure == 2
    assert joined.exit_code == ExitCode.BUILD_FAILURE
    assert [b.variant for b in joined.patches[2].builds] == ["selftests"]


@pytest.mark.parametrize(("other", "says"), [
    (_part(["selftests"], tree="debian-6.12.95"), "b is a check of debian-6.12.95"),
    (_part(["arm64"]), "config arm64 is in both a and b"),
    (_part(["selftests"], range(1, 3)), "b checked patches 1-2, a patches 1-3"),
])
def test_parts_of_different_checks_are_refused(other: CheckReport, says: str) -> None:
    with pytest.raises(UserError, match=says):
        join_reports([(Path("a"), _part(["arm64"])), (Path("b"), other)], ORDER)


def test_a_patch_that_is_another_commit_is_refused() -> None:
    other = _part(["selftests"])
    other.patches[1].sha = "f" * 40
    with pytest.raises(UserError, match="patch 2 is 000000000000 in a, ffffffffffff in b"):
        join_reports([(Path("a"), _part(["arm64"])), (Path("b"), other)], ORDER)


def test_merge_joins_check_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirs = []
    for name, part in (("a", _part(["xfrm=n"])), ("b", _part(["selftests"]))):
        d = tmp_path / name
        d.mkdir()
        write(d / CheckReport.FILE, part.to_json())
        dirs.append(str(d))
    out = tmp_path / "joined"
    assert main(["--cache", str(tmp_path / "c"), "merge", *dirs, "--output", str(out)]) == 0
    joined = CheckReport.load(out / CheckReport.FILE)
    assert joined.configs == ["selftests", "xfrm=n"]
    text = (out / "check.txt").read_text()
    assert "every patch builds in every config" in text
    assert text in capsys.readouterr().out


def test_merge_refuses_a_check_run_beside_a_test_run(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_merge import shard_report

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a / CheckReport.FILE, _part(["xfrm=n"]).to_json())
    write_json(shard_report(1), b / "report.json")
    code = main(["--cache", str(tmp_path / "c"), "merge", str(a), str(b)])
    assert code == ExitCode.USER_ERROR
    assert "a check run and a test run cannot be merged" in capsys.readouterr().err
