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
