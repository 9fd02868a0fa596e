"""Pure parts of 'patchgen check': checkpatch output, config variants."""

from __future__ import annotations

from pathlib import Path

from patchgen.check import (
    CheckpatchResult,
    checkpatch_argv,
    parse_checkpatch,
    settle_file_path_changes,
    variants,
)
from patchgen.kconfig import get_profile
from patchgen.settings import PROJECT_ROOT

DATA = Path(__file__).parent.parent / "data" / "checkpatch"


def test_clean_checkpatch() -> None:
    r = parse_checkpatch((DATA / "clean.txt").read_text())
    assert (r.errors, r.warnings, r.checks, r.findings) == (0, 0, 0, [])


def test_findings_carry_type_and_place() -> None:
    r = parse_checkpatch((DATA / "findings.txt").read_text())
    assert (r.errors, r.warnings, r.checks) == (1, 1, 1)
    assert r.findings == [
        "WARNING:LONG_LINE: line length of 104 exceeds 100 columns "
        "#51: FILE: net/netfilter/core.c:620:",
        "CHECK:AVOID_EXTERNS: extern prototypes should be avoided in .h files "
        "#133: FILE: include/linux/netfilter_arp/arp_tables.h:57:",
        "ERROR:CODE_INDENT: code indent should use tabs where possible "
        "#140: FILE: net/netfilter/core.c:700:",
    ]


def test_no_summary_is_an_error_not_a_pass() -> None:
    r = parse_checkpatch("perl: cannot open scripts/checkpatch.pl\n")
    assert r.errors == 1 and r.findings[0].startswith("checkpatch printed no summary")


def test_checkpatch_argv_is_strict() -> None:
    assert checkpatch_argv(Path("/s")) == ["perl", "/s/scripts/checkpatch.pl", "--strict",
                                           "--no-tree", "--show-types", "--color=never", "-"]


def test_variants_appear_with_the_option() -> None:
    base = get_profile(PROJECT_ROOT / "kernel-config", "selftests")
    assert [v.name for v in variants(base, {"NETFILTER"})] == ["default"]
    both = variants(base, {"NETFILTER", "NF_HOOK_BPF"})
    assert [v.name for v in both] == ["nf_hook_bpf=y", "nf_hook_bpf=n"]
    assert both[1].profile.requested().get("NF_HOOK_BPF") == "n"
    assert both[0].profile is base  # the profile asks for =y: same build directory
    assert both[0].profile.name != both[1].profile.name  # =n has its own


def test_new_files_with_maintainers_settle_the_maintainers_question() -> None:
    r = CheckpatchResult(0, 2, 0, ["WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s)",
                                   "WARNING:LONG_LINE: line length of 104"])
    settled = settle_file_path_changes(r, {"net/netfilter/x.c": ["A <a@b.org>"]})
    assert settled.warnings == 1
    assert settled.findings == ["WARNING:LONG_LINE: line length of 104"]
    assert "net/netfilter/x.c (A <a@b.org>)" in settled.notes[0]
    orphan = settle_file_path_changes(r, {"new/x.c": []})
    assert orphan.warnings == 2  # nobody owns it: the warning stands


def test_patch_ranges() -> None:
    import pytest

    from patchgen.check import parse_range
    from patchgen.errors import UserError

    assert parse_range(None, 9) == set(range(1, 10))
    assert parse_range("6-9", 9) == {6, 7, 8, 9}
    assert parse_range("1,3,5-6", 9) == {1, 3, 5, 6}
    with pytest.raises(UserError, match="has 9 patches"):
        parse_range("8-12", 9)
