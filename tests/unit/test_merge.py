"""patchgen merge: the shards of one run back into one report, or a clear refusal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from patchgen import shard
from patchgen.cli import main
from patchgen.commands import merge
from patchgen.errors import ExitCode, InfraError, UserError
from patchgen.progress import StageTiming
from patchgen.report import Report, summary, write_json
from patchgen.results import Attempt, Outcome, TestResult

GOLDEN = Path(__file__).parent.parent / "data" / "report"
CMD = ("patchgen test --version 6.1 --profile selftests --tests quick --retries 1 "
       "--accel auto --rev patchgen/nf-hook-bpf --switch 1,0 --no-equiv")
ALL = ("1/nft_meta.sh", "1/nft_queue.sh", "0/nft_meta.sh", "0/nft_queue.sh",
       "script:nf_hook_bpf.sh")


def _t(name: str, outcome: Outcome, seconds: float, variant: str = "",
       expected: Outcome | None = Outcome.PASS) -> TestResult:
    return TestResult(name, outcome, (Attempt(outcome, seconds, 0, "out"),), expected,
                      variant=variant)


def serial_tests() -> list[TestResult]:
    return [_t("nft_meta.sh", Outcome.PASS, 7.5, "nf_hook_bpf=1"),
            _t("nft_queue.sh", Outcome.FAIL, 76.0, "nf_hook_bpf=1"),
            _t("nft_meta.sh", Outcome.PASS, 7.8, "nf_hook_bpf=0"),
            _t("nft_queue.sh", Outcome.PASS, 75.5, "nf_hook_bpf=0"),
            _t("nf_hook_bpf.sh:programs_exist", Outcome.PASS, 9.4, expected=None),
            _t("nf_hook_bpf.sh:dump", Outcome.SKIP, 9.4, expected=None)]


def shard_report(i: int, n: int = 2, **meta: str) -> Report:
    d = shard.Durations(None, {"1/nft_queue.sh": 76.0, "0/nft_queue.sh": 75.5,
                               "script:nf_hook_bpf.sh": 18.8}, 7.0)
    mine = shard.assign(list(ALL), d, n)[i - 1]
    r = Report(command=f"{CMD} --shard {i}/{n}", started=f"2026-11-30T14:0{i}:00+00:00")
    r.metadata.update({"tree": "debian-6.1.192", "origin": "debian", "profile": "selftests",
                       "accel": "tcg", "rev": "0e41458514", "config_digest": "abc",
                       "exit_code": 0, **meta})
    r.stages = [StageTiming("tree", 0.1, True), StageTiming("selftests (2 runs)", 100.0 + i,
                                                            True)]
    r.guest = {"accel": "tcg", "boots": [{"boot": 1, "seconds_to_ssh": 40.0 + i}]}
    r.tests = [t for t in serial_tests() if shard.result_key(t, ALL) in mine]
    r.shard = shard.ShardInfo(shard.Shard(i, n), tuple(mine), ALL, None)
    return r


def write(tmp_path: Path, *reports: Report) -> list[Path]:
    dirs: list[Path] = []
    for r in reports:
        assert r.shard is not None
        d = tmp_path / f"s{r.shard.shard.index}-{len(dirs)}"
        d.mkdir()
        write_json(r, d / "report.json")
        dirs.append(d)
    return dirs


def test_the_split_is_not_trivial() -> None:
    one, two = shard_report(1), shard_report(2)
    assert one.shard is not None and two.shard is not None
    # 1/nft_queue.sh (76 s) to 1, 0/nft_queue.sh (75.5) to 2, the script (18.8) to 2,
    # then the 7 s defaults, by key: 0/nft_meta.sh, 1/nft_meta.sh, both to 1
    assert one.shard.keys == ("1/nft_meta.sh", "1/nft_queue.sh", "0/nft_meta.sh")
    assert two.shard.keys == ("0/nft_queue.sh", "script:nf_hook_bpf.sh")


def test_shards_merge_into_the_serial_order() -> None:
    merged = merge.merge_reports([(Path("/r/a"), shard_report(2)), (Path("/r/b"), shard_report(1))])
    assert [t.as_dict() for t in merged.tests] == [t.as_dict() for t in serial_tests()]
    assert merged.command == CMD
    assert merged.shard is None
    assert merged.metadata["merged"] == [
        {"shard": "1/2", "run_dir": "/r/b", "started": "2026-11-30T14:01:00+00:00",
         "exit_code": 0},
        {"shard": "2/2", "run_dir": "/r/a", "started": "2026-11-30T14:02:00+00:00",
         "exit_code": 0}]
    assert merged.started == "2026-11-30T14:01:00+00:00"
    assert [s.name for s in merged.stages] == ["tree [1/2]", "selftests (2 runs) [1/2]",
                                               "tree [2/2]", "selftests (2 runs) [2/2]"]
    assert [b["shard"] for b in merged.guest["boots"]] == ["1/2", "2/2"]
    assert merge.exit_code(merged) == ExitCode.TEST_FAILURE


def test_merged_summary_golden() -> None:
    merged = merge.merge_reports([(Path("/r/s1"), shard_report(1)),
                                  (Path("/r/s2"), shard_report(2))])
    assert summary(merged, "nf_hook_bpf") + "\n" == (GOLDEN / "merged-summary.txt").read_text()


def test_merge_command_writes_the_three_reports(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    dirs = write(tmp_path, shard_report(1), shard_report(2))
    out = tmp_path / "m"
    rc = main(["--cache", str(tmp_path / "c"), "merge", *map(str, dirs), "--output", str(out)])
    assert rc == ExitCode.TEST_FAILURE  # nft_queue.sh [nf_hook_bpf=1] regressed
    data = json.loads((out / "report.json").read_text())
    assert data["summary"]["total"] == 6 and data["summary"]["regressions"] == [
        "nft_queue.sh [nf_hook_bpf=1]"]
    assert Report.load(out / "report.json").metadata["exit_code"] == 1
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "6" and suite.get("failures") == "1"
    text = (out / "summary.txt").read_text()
    assert "merged from 2 shards" in text and text in capsys.readouterr().out + "\n"


def test_a_missing_shard_is_named_and_fails(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    dirs = write(tmp_path, shard_report(1, 3), shard_report(3, 3))
    with pytest.raises(InfraError, match=r"shard 2/3 is missing \(have 1/3, 3/3\)"):
        merge.merge_reports([(d, Report.load(d / "report.json")) for d in dirs])
    rc = main(["--cache", str(tmp_path / "c"), "merge", str(dirs[0]),
               "--output", str(tmp_path / "m")])
    assert rc == ExitCode.INFRA_FAILURE
    err = capsys.readouterr().err
    assert "patchgen: error: shard 2/3, shard 3/3 are missing (have 1/3)" in err
    assert not (tmp_path / "m" / "report.json").exists()


@pytest.mark.parametrize(("other", "says"), [
    (lambda: shard_report(2, rev="ffff"), "not a shard of the same run: rev 0e41458514 ≠ ffff"),
    (lambda: shard_report(2, tree="debian-6.12.95"), "tree debian-6.1.192 ≠ debian-6.12.95"),
    (lambda: shard_report(2, config_digest="x"), "config_digest abc ≠ x"),
    (lambda: shard_report(2, 3), "shard 2/3, but "),
    (lambda: shard_report(1), "shard 1/2 given twice"),
])
def test_shards_of_different_runs_are_refused(other: object, says: str) -> None:
    assert callable(other)
    with pytest.raises(UserError, match=None) as info:
        merge.merge_reports([(Path("/r/a"), shard_report(1)), (Path("/r/b"), other())])
    assert says in info.value.message


def test_a_different_selection_is_refused() -> None:
    two = shard_report(2)
    two.command = two.command.replace("--tests quick", "--tests nft_meta.sh")
    with pytest.raises(UserError, match="command"):
        merge.merge_reports([(Path("/r/a"), shard_report(1)), (Path("/r/b"), two)])


def test_a_report_without_a_shard_is_refused(tmp_path: Path) -> None:
    plain = shard_report(1)
    plain.shard = None
    with pytest.raises(UserError, match=r"/r/a: not a shard's run \(no --shard\)"):
        merge.merge_reports([(Path("/r/a"), plain)])
    with pytest.raises(UserError, match="no run directories"):
        merge.merge_reports([])


def test_a_shard_that_broke_off_sets_the_error_and_the_exit_code() -> None:
    one = shard_report(1)
    one.error = "guest did not boot"
    one.metadata["exit_code"] = int(ExitCode.INFRA_FAILURE)
    one.tests = []
    merged = merge.merge_reports([(Path("/r/a"), one), (Path("/r/b"), shard_report(2))])
    assert merged.error == ("shard 1/2: guest did not boot; shard 1/2 has no results for "
                            "1/nft_meta.sh, 1/nft_queue.sh, 0/nft_meta.sh")
    assert merge.exit_code(merged) == ExitCode.INFRA_FAILURE


def test_a_directory_without_a_report_is_named(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--cache", str(tmp_path / "c"), "merge", str(tmp_path / "nope")])
    assert rc == ExitCode.USER_ERROR
    assert f"{tmp_path / 'nope' / 'report.json'}: cannot read" in capsys.readouterr().err


def test_an_interrupted_merge_leaves_no_report(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """report.json is what CI, ``durations`` and a later merge read: Ctrl-C
    after it was written and before summary.txt left a run that looked
    finished (a new user's first hour).  It is written last, whole."""
    dirs = write(tmp_path, shard_report(1), shard_report(2))
    out = tmp_path / "m"
    real = summary

    def interrupted(*args: object, **kwargs: object) -> str:
        real(*args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(merge, "summary", interrupted)
    rc = main(["--cache", str(tmp_path / "c"), "merge", *map(str, dirs), "--output", str(out)])
    assert rc == ExitCode.INTERRUPTED
    assert not (out / "report.json").exists()
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("spoil", ["command", "boots", "nan", "exit_code"])
def test_shards_wrong_inside_are_bad_input_not_a_crash(tmp_path: Path, spoil: str,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """Right shape, wrong inside (a helper's probe): a traceback and exit 1,
    or a report.json with a bare NaN; and nothing may be written."""
    dirs = write(tmp_path, shard_report(1), shard_report(2))
    path = dirs[1] / "report.json"
    data = json.loads(path.read_text())
    if spoil == "command":
        data["command"] = "patchgen test --tests 'x --shard 2/2"
    elif spoil == "boots":
        data["guest"] = {"boots": "notalist"}
    elif spoil == "exit_code":
        # Was read as "the shard broke off": merge exited 4 (infrastructure).
        data["metadata"]["exit_code"] = "banana"
    else:
        data["tests"][0]["attempts"][0]["seconds"] = float("nan")
    path.write_text(json.dumps(data))
    out = tmp_path / "m"
    rc = main(["--cache", str(tmp_path / "c"), "merge", *map(str, dirs), "--output", str(out)])
    assert rc == ExitCode.USER_ERROR
    assert "malformed" in capsys.readouterr().err
    assert not out.exists()


def test_a_unit_in_two_shards_is_named(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """It said "the shards' units do not add up to the run's: " and nothing more."""
    one, two = shard_report(1), shard_report(2)
    assert one.shard is not None and two.shard is not None
    two.shard = shard.ShardInfo(two.shard.shard, (*two.shard.keys, one.shard.keys[0]),
                                two.shard.all_keys, None)
    dirs = write(tmp_path, one, two)
    rc = main(["--cache", str(tmp_path / "c"), "merge", *map(str, dirs)])
    assert rc == ExitCode.USER_ERROR
    assert f"{one.shard.keys[0]} in more than one shard" in capsys.readouterr().err


def test_a_result_given_twice_in_a_shard_is_malformed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It merged, with the test twice and the total "(of 7)" for 6 results."""
    one, two = shard_report(1), shard_report(2)
    two.tests = [*two.tests, two.tests[0]]
    dirs = write(tmp_path, one, two)
    rc = main(["--cache", str(tmp_path / "c"), "merge", *map(str, dirs)])
    assert rc == ExitCode.USER_ERROR
    assert f"{two.tests[0].label} given twice" in capsys.readouterr().err
