"""patchgen durations: the --shard durations file refreshed from real runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from patchgen import shard
from patchgen.cli import main
from patchgen.errors import ExitCode
from patchgen.report import Report, write_json
from patchgen.results import Attempt, Outcome, TestResult

GOLDEN = Path(__file__).parent.parent / "data" / "durations"
OLD = """# an older file
default = 60

[kvm]
"1/nft_meta.sh" = 2.5

[tcg]
"1/nft_meta.sh" = 7.48
"1/nft_queue.sh" = 76.34
"equiv" = 252.14
"""


def _t(name: str, seconds: float, variant: str = "", retry: float | None = None) -> TestResult:
    attempts = [Attempt(Outcome.PASS, seconds, 0, "")]
    if retry is not None:
        attempts.insert(0, Attempt(Outcome.FAIL, retry, 1, ""))
    return TestResult(name, Outcome.PASS, tuple(attempts), variant=variant)


def tip_tests(scale: float = 1.0) -> list[TestResult]:
    return [_t("nft_meta.sh", 8.0 * scale, "nf_hook_bpf=1"),
            _t("nft_queue.sh", 70.0 * scale, "nf_hook_bpf=1", retry=10.0),
            _t("nft_nat.sh", 30.0 * scale, "nf_hook_bpf=0"),
            _t("nf_hook_bpf.sh:dump", 4.0 * scale), _t("nf_hook_bpf.sh:churn", 6.0 * scale),
            _t("selftest/nf_hook_bpf.sh", 20.0 * scale),  # broke off: no case name
            _t("equiv:nat", 100.0 * scale), _t("equiv:bridge", 50.0 * scale)]


def report(tests: list[TestResult], version: str = "6.1.192", accel: str = "tcg",
           variants: tuple[str, ...] = ("nf_hook_bpf=1", "nf_hook_bpf=0"),
           started: str = "2026-11-30T18:00:00+00:00") -> Report:
    r = Report(command="patchgen run", started=started, tests=tests)
    r.metadata.update({"tree": f"debian-{version}", "version": version, "accel": accel,
                       "rev": "0123456789abcdef", "variants": list(variants)})
    return r


def write(tmp_path: Path, name: str, r: Report) -> Path:
    d = tmp_path / name
    d.mkdir()
    write_json(r, d / "report.json")
    return d


def test_units_from_the_names_are_the_units_the_run_had() -> None:
    keys = ["1/nft_meta.sh", "1/nft_queue.sh", "0/nft_nat.sh", "script:nf_hook_bpf.sh",
            "script:selftest/nf_hook_bpf.sh", "equiv"]
    for t in tip_tests():
        assert shard.unit_of(t, switched=True) == shard.result_key(t, keys), t.label
    # A tree without the switch: a kselftest has no position, and no script ran.
    assert shard.unit_of(_t("nft_meta.sh", 1), switched=False) == "nft_meta.sh"
    assert shard.unit_of(_t("equiv [unpatched]", 1), switched=False) == "equiv"


def test_measured_sums_results_and_retries_per_unit() -> None:
    got = shard.measured(tip_tests(), switched=True)
    assert got == {"1/nft_meta.sh": 8.0, "1/nft_queue.sh": 80.0, "0/nft_nat.sh": 30.0,
                   "script:nf_hook_bpf.sh": 10.0, "script:selftest/nf_hook_bpf.sh": 20.0,
                   "equiv": 150.0}


def test_the_file_keeps_what_the_runs_did_not_measure() -> None:
    runs = [shard.Measured(name, "patchgen run", "debian-6.1.192", "0123456789abcdef",
                           f"2026-11-30T1{i}:00:00+00:00", "tcg",
                           shard.measured(tip_tests(scale), switched=True))
            for i, (name, scale) in enumerate((("a-test", 1.0), ("b-test", 1.5)))]
    text = shard.durations_text(OLD, runs)
    assert text == (GOLDEN / "updated.toml").read_text()
    data = tomllib.loads(text)
    assert data["kvm"] == {"1/nft_meta.sh": 2.5}  # another accelerator: untouched
    assert data["tcg"]["1/nft_meta.sh"] == 10.0  # mean of 8 and 12
    assert data["tcg"]["1/nft_queue.sh"] == 97.5  # (70+10 + 105+10) / 2
    assert data["default"] == 60
    assert shard.durations_text(text, runs) == text  # the same runs again: the same file


def test_runs_of_two_accelerators_are_refused() -> None:
    runs = [shard.Measured(n, "c", "t", "r", "s", a, {"x": 1.0})
            for n, a in (("a", "tcg"), ("b", "kvm"))]
    with pytest.raises(ValueError, match="one accelerator"):
        shard.durations_text(None, runs)


def test_command_writes_the_file_and_dry_run_does_not(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "6.1.toml"
    out.write_text(OLD)
    run = write(tmp_path, "20261130-180000-test", report(tip_tests()))
    assert main(["durations", str(run), "--output", str(out), "--dry-run"]) == ExitCode.OK
    assert out.read_text() == OLD
    shown = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[1:-1]}
    assert rows["1/nft_queue.sh"] == ["76.34", "80.00"]
    assert rows["0/nft_nat.sh"] == ["-", "30.00"]
    assert "equiv" in rows and "1/nft_meta.sh" in rows
    assert "would be written to (--dry-run)" in shown
    assert main(["durations", str(run), "--output", str(out)]) == ExitCode.OK
    assert tomllib.loads(out.read_text())["tcg"]["0/nft_nat.sh"] == 30.0
    assert "# 20261130-180000-test (tcg): patchgen run" in out.read_text()
    assert not list(tmp_path.glob("*.tmp"))


def test_command_refuses_runs_of_two_series(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a", report(tip_tests()))
    b = write(tmp_path, "b", report(tip_tests(), version="6.12.95"))
    out = tmp_path / "x.toml"
    assert main(["durations", str(a), str(b), "--output", str(out)]) == ExitCode.USER_ERROR
    assert "one kernel series and one accelerator" in capsys.readouterr().err
    assert not out.exists()


def test_one_run_given_twice_is_refused(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Its seconds counted twice in every unit's mean: same directory, or a
    merged run beside a shard it merged."""
    a = write(tmp_path, "a", report(tip_tests()))
    out = tmp_path / "x.toml"
    assert main(["durations", str(a), f"{tmp_path}/./a/", "--output", str(out)]) \
        == ExitCode.USER_ERROR
    assert f"{a}: given twice" in capsys.readouterr().err
    merged = report(tip_tests(2.0))
    merged.metadata["merged"] = [{"shard": "1/2", "run_dir": str(a)}]
    m = write(tmp_path, "m", merged)
    assert main(["durations", str(m), str(a), "--output", str(out)]) == ExitCode.USER_ERROR
    assert f"{a}: a shard of {m}, which merged it" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(("run", "says"), [
    # "kvm tcg" became a TOML table name: a TOMLDecodeError, exit 4.
    (report(tip_tests(), accel="kvm tcg"), "accelerator 'kvm tcg' is none patchgen uses"),
    # 1e300 seconds were written to the durations file.
    (report(tip_tests(1e300)), "not a number of seconds"),
])
def test_a_run_the_file_cannot_take_is_refused(tmp_path: Path, run: Report, says: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a", run)
    out = tmp_path / "x.toml"
    assert main(["durations", str(a), "--output", str(out)]) == ExitCode.USER_ERROR
    assert says in capsys.readouterr().err
    assert not out.exists()


def test_command_refuses_a_run_without_results(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path, "a", report([]))
    assert main(["durations", str(a), "--output", str(tmp_path / "x")]) == ExitCode.USER_ERROR
    assert "no test results" in capsys.readouterr().err


def test_a_shard_run_is_read_by_its_own_units(tmp_path: Path) -> None:
    from patchgen.commands import durations

    r = report([_t("nft_meta.sh", 8.0, "nf_hook_bpf=1")])
    r.shard = shard.ShardInfo(shard.Shard(1, 2), ("1/nft_meta.sh",),
                              ("1/nft_meta.sh", "0/nft_meta.sh"))
    got = durations.measured(tmp_path, r)
    assert got.seconds == {"1/nft_meta.sh": 8.0}
    r.tests.append(_t("other.sh", 1.0, "nf_hook_bpf=1"))
    with pytest.raises(Exception, match="belongs to no unit"):
        durations.measured(tmp_path, r)
