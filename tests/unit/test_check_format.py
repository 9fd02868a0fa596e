"""The check summary table: columns line up whatever the build variants are."""

from __future__ import annotations

from patchgen.check import BuildCheck, CheckpatchResult, CheckReport, PatchCheck, format_report


def _patch(n: int, variants: list[str], ok: bool = True) -> PatchCheck:
    return PatchCheck(n, f"{n:040x}", f"netfilter: patch {n}", ["net/netfilter/core.c"],
                      builds=[BuildCheck(v, ok, 1.0, 1) for v in variants],
                      checkpatch=CheckpatchResult(0, 0, 0, []))


def test_columns_line_up_with_two_variants() -> None:
    report = CheckReport("debian-6.12.95", "789fb68e14f5" + "0" * 28, "patchgen/nf-hook-bpf",
                         [_patch(5, ["default"]), _patch(6, ["nf_hook_bpf=y", "nf_hook_bpf=n"])])
    lines = format_report(report).splitlines()
    header, p5, p6 = lines[2], lines[3], lines[4]
    col = header.index("W=1 new")
    assert p5.index(" 0  0/0/0") == p6.index(" 0  0/0/0") == col + len("W=1 new") - 2
    assert p6.startswith("   6  nf_hook_bpf=y:ok, nf_hook_bpf=n:ok ")
    assert lines[-1] == "  every patch builds"


def test_first_failure_is_named() -> None:
    report = CheckReport("t", "b" * 40, "br", [_patch(6, ["nf_hook_bpf=y"], ok=False)], 6)
    assert "first patch that does not build: 6 netfilter: patch 6" in format_report(report)


def test_first_failure_is_found_in_a_partial_check() -> None:
    # check --patches 5-6: the report holds patches 5 and 6 only.
    report = CheckReport("t", "b" * 40, "br", [_patch(5, ["default"]),
                                              _patch(6, ["nf_hook_bpf=y"], ok=False)], 6)
    assert "first patch that does not build: 6 netfilter: patch 6" in format_report(report)
