"""The check summary table: patch x config, columns that line up."""

from __future__ import annotations

from patchgen.check import BuildCheck, CheckpatchResult, CheckReport, PatchCheck, format_report


def _patch(n: int, variants: list[str], ok: bool = True) -> PatchCheck:
    return PatchCheck(n, f"{n:040x}", f"netfilter: patch {n}", ["net/netfilter/core.c"],
                      builds=[BuildCheck(v, ok, 1.0, 1) for v in variants],
                      checkpatch=CheckpatchResult(0, 0, 0, []))


def test_table_is_patch_by_config() -> None:
    p5 = _patch(5, ["selftests", "xfrm=n"])
    p6 = _patch(6, ["selftests", "nf_hook_bpf=n", "xfrm=n"])
    p6.builds[2].warnings_added = ["net/netfilter/nf_nat_proto.c: unused variable 'skb'"]
    report = CheckReport("debian-6.12.95", "789fb68e14f5" + "0" * 28, "patchgen/nf-hook-bpf",
                         [p5, p6], configs=["selftests", "nf_hook_bpf=n", "xfrm=n"])
    lines = format_report(report).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split()[:4] == ["#", "selftests", "nf_hook_bpf=n", "xfrm=n"]
    row5 = next(line for line in lines if line.startswith("   5  "))
    row6 = next(line for line in lines if line.startswith("   6  "))
    assert row5.split()[:4] == ["5", "ok", "-", "ok"]
    assert row6.split()[:4] == ["6", "ok", "ok", "+1"]
    # Columns line up: the checkpatch column starts at the same place.
    assert row5.index("0/0/0") == row6.index("0/0/0") == header.index("checkpatch")
    assert "    6: [xfrm=n] net/netfilter/nf_nat_proto.c: unused variable 'skb'" in lines
    assert not p6.clean and p5.clean


def test_first_failure_is_named() -> None:
    report = CheckReport("t", "b" * 40, "br", [_patch(6, ["nf_hook_bpf=y"], ok=False)], 6)
    assert "first patch that does not build: 6 netfilter: patch 6" in format_report(report)


def test_first_failure_is_found_in_a_partial_check() -> None:
    # check --patches 5-6: the report holds patches 5 and 6 only.
    report = CheckReport("t", "b" * 40, "br", [_patch(5, ["default"]),
                                              _patch(6, ["nf_hook_bpf=y"], ok=False)], 6)
    assert "first patch that does not build: 6 netfilter: patch 6" in format_report(report)


def test_checkpatch_warnings_and_checks_make_a_patch_unclean() -> None:
    """'checkpatch --strict clean' means no errors, no warnings and no checks:
    check exited 0 with two NETWORKING_BLOCK_COMMENT_STYLE warnings once."""
    p = _patch(6, ["selftests"])
    assert p.clean
    p.checkpatch = CheckpatchResult(0, 2, 0, ["WARNING:NETWORKING_BLOCK_COMMENT_STYLE: x"])
    assert not p.clean
    p.checkpatch = CheckpatchResult(0, 0, 1, ["CHECK:PARENTHESIS_ALIGNMENT: x"])
    assert not p.clean
    report = CheckReport("t", "b" * 40, "br", [p], configs=["selftests"])
    assert report.exit_code != 0


def _booted(p: PatchCheck, status: str, tests: int = 0, failed: int = 0) -> PatchCheck:
    from patchgen.check import BootCheck
    from patchgen.results import Attempt, Outcome, TestResult

    def r(i: int) -> TestResult:
        o = Outcome.FAIL if i < failed else Outcome.PASS
        return TestResult(f"t{i}.sh", o, (Attempt(o, 1.0, 0, ""),), Outcome.PASS)

    p.boot = BootCheck(status, 60.0, "1", [r(i) for i in range(tests)],
                       "kernel panic" if status == "no boot" else "")
    return p


def test_boot_column_shows_the_smoke_set_per_patch() -> None:
    """check --boot: one more column, after the build configs."""
    patches = [_booted(_patch(1, ["selftests"]), "ok", 8),
               _booted(_patch(6, ["selftests"]), "fail", 25, 2),
               _booted(_patch(7, ["selftests"]), "no boot"),
               _booted(_patch(8, ["selftests"], ok=False), "not built")]
    report = CheckReport("t", "b" * 40, "br", patches, 8, configs=["selftests"], boot=True)
    lines = format_report(report).splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split()[:3] == ["#", "selftests", "boot"]
    rows = {int(line.split()[0]): line for line in lines if line[:4].strip().isdigit()}
    assert rows[1].split()[1:3] == ["ok", "8/8"]
    assert rows[6].split()[1:3] == ["ok", "23/25"]
    assert rows[7].split()[1:4] == ["ok", "no", "boot"]
    assert rows[8].split()[1:4] == ["FAIL", "not", "built"]
    # Columns line up; what failed is named.
    assert rows[1].index("0/0/0") == rows[8].index("0/0/0") == header.index("checkpatch")
    assert "  first patch whose smoke set fails: 6 netfilter: patch 6 (t0.sh, t1.sh)" in lines
    assert "    7: no boot: kernel panic" in lines
    assert report.exit_code == 3  # a build failure still ranks first


def test_a_failing_smoke_set_fails_the_check() -> None:
    p = _booted(_patch(6, ["selftests"]), "fail", 3, 1)
    report = CheckReport("t", "b" * 40, "br", [p], configs=["selftests"], boot=True)
    assert report.exit_code == 1 and not p.clean
    assert _booted(_patch(6, ["selftests"]), "ok", 3).clean


def test_without_boot_there_is_no_boot_column() -> None:
    report = CheckReport("t", "b" * 40, "br", [_patch(1, ["selftests"])], configs=["selftests"])
    assert "boot" not in format_report(report)


def test_boot_results_survive_the_run_file() -> None:
    import json

    p = _booted(_patch(6, ["selftests"]), "fail", 3, 1)
    report = CheckReport("t", "b" * 40, "br", [p, _patch(7, ["selftests"])],
                         configs=["selftests"], boot=True)
    again = CheckReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again == report
    assert again.patches[0].boot is not None and again.patches[0].boot.failed == ["t0.sh"]
    assert again.to_json()["schema_version"] == 2
    # A version-1 file (no boot) still reads.
    old = {k: v for k, v in report.to_json().items() if k != "boot"}
    old["schema_version"] = 1
    for pd in old["patches"]:
        pd.pop("boot")
    assert CheckReport.from_json(old).boot is False
