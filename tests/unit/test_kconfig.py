from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.errors import BuildFailure, UserError
from patchgen.kconfig import (
    Kconfig,
    KconfigEntry,
    Profile,
    configure,
    get_profile,
    load_profiles,
    tree_symbols,
    validate,
)
from patchgen.settings import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "kernel-config"


def test_parse_set_unset_and_values() -> None:
    k = Kconfig.parse("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=16\n# junk\n")
    assert k.get("A") == "y"
    assert k.get("B") == "n"
    assert k.get("C") == '"x y"'
    assert k.get("D") == "16"
    assert k.get("MISSING") == "n"


def test_entry_renders_like_kconfig() -> None:
    assert str(KconfigEntry("A", "y")) == "CONFIG_A=y"
    assert str(KconfigEntry("B", "n")) == "# CONFIG_B is not set"


def test_validate_names_dropped_and_ignores_symbols_the_tree_lacks() -> None:
    requested = Kconfig.parse("CONFIG_A=y\nCONFIG_B=y\nCONFIG_RENAMED=y\n# CONFIG_C is not set\n")
    final = Kconfig.parse("CONFIG_A=y\n# CONFIG_B is not set\n")
    v = validate(requested, final, {"A", "B", "C"})
    assert [d.name for d in v.dropped] == ["B"]
    assert str(v.dropped[0]) == "CONFIG_B: requested y, got n"
    assert v.not_in_tree == ("RENAMED",)
    assert not v.ok


def test_every_profile_loads_and_its_fragments_parse() -> None:
    profiles = load_profiles(CONFIG_DIR)
    assert "selftests" in profiles
    for profile in profiles.values():
        requested = profile.requested()
        assert requested.get("NETFILTER") == "y"
        assert requested.get("MODULES") == "y"  # BPF_JIT depends on it in 6.1


def test_no_modules_in_fragments() -> None:
    # The guest boots on the host's root file system: nothing could load them.
    for frag in CONFIG_DIR.glob("*.config"):
        assert "=m" not in frag.read_text(), frag


def test_unknown_profile_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown config profile"):
        get_profile(CONFIG_DIR, "nope")


def test_profile_digest_changes_with_extra_options() -> None:
    base = get_profile(CONFIG_DIR, "selftests")
    other = base.with_extra("bpf", [KconfigEntry("NF_HOOK_BPF", "y")])
    assert other.name == "selftests+bpf"
    assert other.digest() != base.digest()
    assert other.requested().get("NF_HOOK_BPF") == "y"


def test_configure_with_fake_tree_reports_dropped(fakelinux: Path, tmp_path: Path) -> None:
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_NETFILTER=y\nCONFIG_DROPPED_ONE=y\n")
    profile = Profile("t", "", (frag,))
    with pytest.raises(BuildFailure, match="CONFIG_DROPPED_ONE: requested y, got n"):
        configure(fakelinux, tmp_path / "out", profile, log_path=tmp_path / "l")


def test_configure_keeps_timestamp_when_nothing_changed(fakelinux: Path, tmp_path: Path) -> None:
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_NETFILTER=y\nCONFIG_FOO=y\n")
    profile = Profile("t", "", (frag,))
    out = tmp_path / "out"
    first = configure(fakelinux, out, profile, log_path=tmp_path / "l")
    assert first.changed
    (out / ".config").touch()
    import os
    os.utime(out / ".config", (1000, 1000))
    second = configure(fakelinux, out, profile, log_path=tmp_path / "l")
    assert not second.changed
    assert (out / ".config").stat().st_mtime == 1000
    assert second.digest == first.digest


def test_tree_symbols(fakelinux: Path) -> None:
    assert {"NETFILTER", "FOO", "RETPOLINE"} <= tree_symbols(fakelinux)
