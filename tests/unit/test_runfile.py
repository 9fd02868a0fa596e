"""Run files read back into the typed results: round trips, versions, and clear errors."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patchgen.bench import BenchResult, CostModel, compare
from patchgen.bisect import BisectReport, Step
from patchgen.check import BuildCheck, CheckpatchResult, CheckReport, PatchCheck
from patchgen.errors import ExitCode
from patchgen.report import Report
from patchgen.runfile import RunFileError
from tests.unit.test_report import sample


def check_report() -> CheckReport:
    return CheckReport("debian-6.1.192", "b" * 40, "patchgen/nf-hook-bpf", [
        PatchCheck(1, "1" * 40, "netfilter: one", ["net/netfilter/core.c"],
                   [BuildCheck("selftests", True, 12.5, 3, [], ["core.c:1: warning: w"],
                               ["net/netfilter/core.c"]),
                    BuildCheck("xfrm=n", False, 2.25, 0, ["core.c:2: error: e"])],
                   CheckpatchResult(0, 1, 2, ["WARNING: x"], ["harmless"])),
        PatchCheck(2, "2" * 40, "netfilter: two", [], [], None),
    ], first_failure=1, configs=["selftests", "xfrm=n"])


def bench_result() -> BenchResult:
    return BenchResult(
        "tcg", [compare("fwd_pps", "retpoline", "ct", [110.0] * 8, [100.0] * 8),
                compare("insns_per_call", "off", "5 hooks", [169.0] * 3, [246.0] * 3,
                        icount=True)],
        raw={"off": {"fwd_output": "BENCH ...", "micro": {"5": [169.0]}}},
        missing=[("ns_per_call", "off", "20 hooks")], metadata={"tree": "debian-6.1.192"},
        mode="icount", calibration={"retpoline": 4.0}, control=[{"clock": "tcg icount", "n": 1}],
        model=CostModel(1.5, 25.0))


def _through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data))


def test_report_round_trip() -> None:
    report = sample()
    again = Report.from_json(_through_json(report.to_json()))
    assert again == report
    assert again.to_json() == report.to_json()


def test_check_report_round_trip() -> None:
    report = check_report()
    assert CheckReport.from_json(_through_json(report.to_json())) == report


def test_bench_result_round_trip() -> None:
    result = bench_result()
    again = BenchResult.from_json(_through_json(result.to_json()))
    assert again == result
    assert again.table == result.table and again.rfc == result.rfc


def bisect_report() -> BisectReport:
    return BisectReport("debian-6.1.192", "nft_meta.sh", "a" * 40, "b" * 40,
                        [Step(0, "a" * 40, "base", "pass", 1.0),
                         Step(10, "b" * 40, "tip", "fail", 2.0, "x")], 10, "patchgen bisect")


def test_bisect_report_round_trip() -> None:
    report = bisect_report()
    assert BisectReport.from_json(_through_json(report.to_json())) == report


def test_every_result_says_its_schema_version() -> None:
    """check.json is version 2 since it has the boot column (check --boot)."""
    for data, version in ((sample().to_json(), 1), (check_report().to_json(), 2),
                          (bench_result().to_json(), 1), (bisect_report().to_json(), 1)):
        assert data["schema_version"] == version


READERS: list[tuple[str, Callable[[Path], object], Callable[[], dict[str, Any]]]] = [
    ("report.json", Report.load, lambda: sample().to_json()),
    ("check.json", CheckReport.load, lambda: check_report().to_json()),
    ("bench.json", BenchResult.load, lambda: bench_result().to_json()),
    ("bisect.json", BisectReport.load, lambda: bisect_report().to_json()),
]


@pytest.mark.parametrize(("name", "load", "make"), READERS)
def test_a_file_from_before_schema_version_reads_as_version_1(
        tmp_path: Path, name: str, load: Callable[[Path], object],
        make: Callable[[], dict[str, Any]]) -> None:
    data = make()
    (tmp_path / "new.json").write_text(json.dumps(data))
    del data["schema_version"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert load(tmp_path / "old.json") == load(tmp_path / "new.json")


def _error(path: Path, load: Callable[[Path], object]) -> RunFileError:
    with pytest.raises(RunFileError) as info:
        load(path)
    assert info.value.message.startswith(f"{path}: ")
    assert info.value.exit_code == ExitCode.USER_ERROR
    return info.value


@pytest.mark.parametrize(("name", "load", "make"), READERS)
def test_a_newer_schema_version_is_refused_by_name(
        tmp_path: Path, name: str, load: Callable[[Path], object],
        make: Callable[[], dict[str, Any]]) -> None:
    path = tmp_path / name
    current = make()["schema_version"]
    path.write_text(json.dumps({**make(), "schema_version": current + 1}))
    err = _error(path, load)
    assert f"schema_version {current + 1} is newer than this patchgen reads ({current})" \
        in err.message
    assert err.hint and "update patchgen" in err.hint


@pytest.mark.parametrize(("name", "load", "make"), READERS)
@pytest.mark.parametrize(("spoil", "says"), [
    (lambda d: {k: v for k, v in d.items()
                if k not in ("tests", "patches", "comparisons", "steps")},
     "malformed run file: no "),
    (lambda d: {**d, "metadata" if "metadata" in d else "tree": 7}, "malformed run file: "),
    (lambda d: {**d, "schema_version": "one"}, "schema_version 'one' is not a version number"),
    (lambda d: [d], "not a run file"),
])
def test_a_malformed_file_is_an_error_that_names_it(
        tmp_path: Path, name: str, load: Callable[[Path], object],
        make: Callable[[], dict[str, Any]], spoil: Callable[[dict[str, Any]], Any],
        says: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps(spoil(make())))
    assert says in _error(path, load).message


@pytest.mark.parametrize(("name", "load", "make"), READERS)
def test_a_wrong_value_deep_inside_is_malformed_too(
        tmp_path: Path, name: str, load: Callable[[Path], object],
        make: Callable[[], dict[str, Any]]) -> None:
    data = make()
    key = {"report.json": "tests", "check.json": "patches", "bench.json": "comparisons",
           "bisect.json": "steps"}[name]
    data[key][0] = {**data[key][0], next(iter(data[key][0])): None}
    path = tmp_path / name
    path.write_text(json.dumps(data))
    assert "malformed run file" in _error(path, load).message


def test_not_json_and_no_file_are_errors_that_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"command": ')
    assert "not JSON" in _error(path, Report.load).message
    assert "cannot read" in _error(tmp_path / "absent.json", Report.load).message


@pytest.mark.parametrize(("name", "load", "make"), READERS)
def test_a_key_given_twice_is_malformed(tmp_path: Path, name: str,
                                         load: Callable[[Path], object],
                                         make: Callable[[], dict[str, Any]]) -> None:
    """json.loads keeps the last of two values: which one was meant, nobody knows."""
    text = json.dumps(make())
    path = tmp_path / name
    path.write_text(text[:-1] + ', "schema_version": 0}')
    message = _error(path, load).message
    assert f"{path}: malformed run file: key 'schema_version' given twice" in message


def test_from_json_names_its_source() -> None:
    with pytest.raises(RunFileError, match=r"^runs/x/bench.json: malformed run file: no 'accel'"):
        BenchResult.from_json({"comparisons": []}, "runs/x/bench.json")


def test_prep_skips_an_unreadable_run_file_and_says_which(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from patchgen.prep import _newest

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.json").write_text(json.dumps(sample().to_json()))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "report.json").write_text('{"schema_version": 9}')
    os.utime(tmp_path / "b" / "report.json", (2e9, 2e9))  # the newest: read first
    with caplog.at_level(logging.WARNING):
        found = _newest(sorted(tmp_path.glob("*/report.json")), Report.load, lambda r: True)
    assert found == sample()
    assert f"{tmp_path / 'b' / 'report.json'}: schema_version 9 is newer" in caplog.text


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_json_nested_too_deeply_is_an_error_that_names_the_file(tmp_path: Path,
                                                                 depth: int) -> None:
    """Python's JSON decoder recurses: a hostile or broken file must not
    become 'internal error: RecursionError'."""
    path = tmp_path / "report.json"
    path.write_text('{"tests": ' + "[" * depth + "]" * depth + "}")
    message = _error(path, Report.load).message
    assert message == f"{path}: not JSON: nested too deeply to read"
