"""Pure parts of 'patchgen check': checkpatch output, config variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchgen.check import (
    CheckpatchResult,
    checkpatch_argv,
    parse_checkpatch,
    settle_const_sysctl_tables,
    settle_file_path_changes,
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


def test_checkpatch_argv_is_strict_and_sees_the_tree() -> None:
    """As a maintainer runs it: in the tree, so the checks that look at the
    tree run too (<asm/x.h> where <linux/x.h> exists, for one)."""
    assert checkpatch_argv(Path("/s")) == ["perl", "/s/scripts/checkpatch.pl", "--strict",
                                           "--show-types", "--color=never", "-"]


def test_matrix_quick_tier_is_what_ci_builds_and_full_adds_the_rest() -> None:
    from patchgen import matrix

    configs = matrix.load(PROJECT_ROOT / "kernel-config")
    quick = [c.name for c in matrix.select(configs, "quick")]
    assert quick == ["selftests", "nf_hook_bpf=n", "xfrm=n"]
    full = [c.name for c in matrix.select(configs, "full")]
    for name in ("ipv6=n", "bridge_netfilter=n", "nf_nat=n", "bpf_jit=n", "mitigations=off",
                 "arm64", "allmodconfig"):
        assert name in full
    assert full[:3] == quick


def test_matrix_profiles() -> None:
    from patchgen import matrix

    base = get_profile(PROJECT_ROOT / "kernel-config", "selftests")
    configs = {c.name: c for c in matrix.load(PROJECT_ROOT / "kernel-config")}
    assert configs["selftests"].profile(base) is base  # same build directory
    off = configs["nf_hook_bpf=n"].profile(base)
    assert off.name != base.name and off.relaxed
    # Only what the config sets must survive; the fragments ask for =y.
    assert off.checked().entries == {"NF_HOOK_BPF": "n"}
    assert off.requested().get("NF_HOOK_BPF") == "n"
    # Before the option exists the config is the profile build: not repeated.
    assert not configs["nf_hook_bpf=n"].applies({"NETFILTER"})
    assert configs["nf_hook_bpf=n"].applies({"NETFILTER", "NF_HOOK_BPF"})
    allmod = configs["allmodconfig"].profile(base)
    assert allmod.base == "allmodconfig" and allmod.fragments == ()
    assert configs["allmodconfig"].applies(set())


def test_matrix_arm64_builds_the_profile_with_the_cross_toolchain(tmp_path: Path) -> None:
    """The hook functions the series changes are built by other architectures' bots too."""
    from patchgen import matrix
    from patchgen.build import make_argv

    base = get_profile(PROJECT_ROOT / "kernel-config", "selftests")
    arm = {c.name: c for c in matrix.load(PROJECT_ROOT / "kernel-config")}["arm64"]
    prof = arm.profile(base)
    assert (prof.arch, prof.cross_compile) == ("arm64", "aarch64-linux-gnu-")
    assert prof.name == "selftests+arm64" and prof.relaxed  # x86-only options may go
    assert prof.fragments == base.fragments and arm.scope == "dirs"
    assert prof.digest() != base.digest()  # its own build directory and stamp
    argv = make_argv(Path("/s"), Path("/o"), ["net/netfilter/"], jobs=2,
                     make_vars=prof.make_vars(), arch=prof.arch)
    assert "ARCH=arm64" in argv and "CROSS_COMPILE=aarch64-linux-gnu-" in argv
    assert base.make_vars() == {}


def test_matrix_missing_cross_toolchain_names_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest

    from patchgen import matrix
    from patchgen.errors import MissingTool

    configs = matrix.load(PROJECT_ROOT / "kernel-config")
    monkeypatch.setattr("shutil.which", lambda name: None)
    matrix.toolchains(matrix.select(configs, "quick"))  # none needed
    with pytest.raises(MissingTool, match="aarch64-linux-gnu-gcc") as exc:
        matrix.toolchains(matrix.select(configs, "full"))
    assert exc.value.hint == "install it with: apt-get install gcc-aarch64-linux-gnu"


def test_matrix_other_arch_needs_a_toolchain_and_dirs_scope(tmp_path: Path) -> None:
    import pytest

    from patchgen import matrix
    from patchgen.errors import UserError

    (tmp_path / "matrix.toml").write_text(
        '[[config]]\nname = "p"\n[[config]]\nname = "a"\narch = "arm64"\nscope = "full"\n')
    with pytest.raises(UserError, match="cross_compile"):
        matrix.load(tmp_path)


def test_matrix_selection_errors() -> None:
    import pytest

    from patchgen import matrix
    from patchgen.errors import UserError

    configs = matrix.load(PROJECT_ROOT / "kernel-config")
    assert [c.name for c in matrix.select(configs, "quick", ("ipv6=n",))] == ["ipv6=n"]
    with pytest.raises(UserError, match="unknown config"):
        matrix.select(configs, "quick", ("ipv7=n",))
    with pytest.raises(UserError, match="--matrix"):
        matrix.select(configs, "huge")


def test_new_files_with_maintainers_settle_the_maintainers_question() -> None:
    r = CheckpatchResult(0, 2, 0, ["WARNING:FILE_PATH_CHANGES: added, moved or deleted file(s)",
                                   "WARNING:LONG_LINE: line length of 104"])
    settled = settle_file_path_changes(r, {"net/netfilter/x.c": ["A <a@b.org>"]})
    assert settled.warnings == 1
    assert settled.findings == ["WARNING:LONG_LINE: line length of 104"]
    assert "net/netfilter/x.c (A <a@b.org>)" in settled.notes[0]
    orphan = settle_file_path_changes(r, {"new/x.c": []})
    assert orphan.warnings == 2  # nobody owns it: the warning stands


CONST_TABLE = "WARNING:CONST_STRUCT: struct ctl_table should normally be const " \
    "#675: FILE: net/netfilter/x.c:385:"
SYSCTL_PATCH = """\
+++ b/net/netfilter/x.c
@@ -0,0 +383,8 @@
+
+#ifdef CONFIG_SYSCTL
+static struct ctl_table x_sysctl_table[] = {
+	{ .procname = "x", },
+};
+#endif
+	if (!register_net_sysctl(&init_net, "net/netfilter", x_sysctl_table))
"""
# 7.2's include/net/net_namespace.h: the table is not const.
NON_CONST = """struct ctl_table_header *register_net_sysctl_sz(struct net *net, const char *path,
\t\t\t\t\t     struct ctl_table *table, size_t table_size);
"""


def test_a_net_sysctl_table_the_tree_cannot_take_const_is_a_note() -> None:
    """7.2's checkpatch wants every struct ctl_table const, but its
    register_net_sysctl_sz() takes a non-const one (every net sysctl table
    of that tree draws the warning): check exited 1 on 7.2 for it."""
    r = CheckpatchResult(0, 1, 0, [CONST_TABLE])
    settled = settle_const_sysctl_tables(r, SYSCTL_PATCH, NON_CONST)
    assert (settled.warnings, settled.findings) == (0, [])
    assert "x_sysctl_table" in settled.notes[0] and "register_net_sysctl_sz()" in settled.notes[0]


@pytest.mark.parametrize("patch, header", [
    # A tree whose registration takes a const table: make it const.
    (SYSCTL_PATCH, NON_CONST.replace("struct ctl_table *table", "const struct ctl_table *table")),
    # A table registered some other way.
    (SYSCTL_PATCH.replace("register_net_sysctl(&init_net", "register_sysctl("), NON_CONST),
    # The finding is on another line: not the registered table's (a
    # hostile read: every ctl_table finding of the patch was settled).
    (SYSCTL_PATCH.replace("+383,8", "+390,8"), NON_CONST),
])
def test_a_sysctl_table_that_could_be_const_stays_a_warning(patch: str, header: str) -> None:
    r = CheckpatchResult(0, 1, 0, [CONST_TABLE])
    assert settle_const_sysctl_tables(r, patch, header) == r


def test_patch_ranges() -> None:
    import pytest

    from patchgen.check import parse_range
    from patchgen.errors import UserError

    assert parse_range(None, 9) == set(range(1, 10))
    assert parse_range("6-9", 9) == {6, 7, 8, 9}
    assert parse_range("1,3,5-6", 9) == {1, 3, 5, 6}
    with pytest.raises(UserError, match="has 9 patches"):
        parse_range("8-12", 9)


def test_check_boot_boots_each_built_patch_before_the_next_is_built(
        fakelinux: Path, tmp_path: Path) -> None:
    """--boot: the profile build of every patch that builds is booted while it
    is in the build directory; a patch that does not build is "not built"."""
    import subprocess

    from patchgen import build as kbuild
    from patchgen import settings
    from patchgen.check import BootCheck, PatchCheck, check_series
    from patchgen.kconfig import Profile
    from patchgen.matrix import MatrixConfig
    from patchgen.progress import null_progress
    from patchgen.tree import TreeRequest, prepare

    def commit(msg: str, name: str) -> None:
        (fakelinux / name).write_text(msg + "\n")
        subprocess.run(["git", "-C", str(fakelinux), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(fakelinux), "commit", "-qm", msg], check=True)

    subprocess.run(["git", "-C", str(fakelinux), "checkout", "-qb", "series"], check=True)
    commit("one", "net/netfilter/one.c")
    commit("two", "net/netfilter/two.c")
    commit("three", "FAIL_BUILD")
    commit("four", "net/netfilter/four.c")
    subprocess.run(["git", "-C", str(fakelinux), "checkout", "-q", "main"], check=True)
    s = settings.load(tmp_path / "cache", jobs=1)
    tree = prepare(TreeRequest(path=fakelinux), s, null_progress())
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_NETFILTER=y\n")
    seen: list[tuple[int, str]] = []

    def boot(pc: PatchCheck, built: kbuild.BuildResult) -> BootCheck:
        # The build in the directory is this patch's: its worktree file is there.
        src = tmp_path / "cache" / "worktrees" / tree.id
        seen.append((pc.number, built.image.read_text().strip()))
        assert (src / "net" / "netfilter" / ("one.c" if pc.number == 1 else "two.c")).exists()
        return BootCheck("ok" if pc.number == 1 else "fail", 1.0)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    report = check_series(tree, "series", Profile("t", "", (frag,)), s, null_progress(),
                          run_dir, w1=False, checkpatch=False,
                          configs=(MatrixConfig("t", (), "full", "quick"),), boot=boot)
    assert seen == [(1, "fake"), (2, "fake")]
    assert report.boot and report.first_failure == 3
    assert [p.boot.status if p.boot else None for p in report.patches] == \
        ["ok", "fail", "not built", "not built"]
    assert report.first_boot_failure is report.patches[1]


def test_an_interrupted_check_keeps_the_patches_it_checked(fakelinux: Path,
                                                          tmp_path: Path) -> None:
    """A full-matrix check takes hours on two cores: Ctrl-C at patch 6 must
    not lose what patches 1-5 showed (check.json was written at the end
    only)."""
    import json
    import subprocess

    import pytest

    from patchgen import build as kbuild
    from patchgen import settings
    from patchgen.check import BootCheck, CheckReport, PatchCheck, check_series
    from patchgen.kconfig import Profile
    from patchgen.matrix import MatrixConfig
    from patchgen.progress import null_progress
    from patchgen.tree import TreeRequest, prepare

    subprocess.run(["git", "-C", str(fakelinux), "checkout", "-qb", "series"], check=True)
    for name in ("one", "two", "three"):
        (fakelinux / "net" / "netfilter" / f"{name}.c").write_text(name + "\n")
        subprocess.run(["git", "-C", str(fakelinux), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(fakelinux), "commit", "-qm", name], check=True)
    subprocess.run(["git", "-C", str(fakelinux), "checkout", "-q", "main"], check=True)
    s = settings.load(tmp_path / "cache", jobs=1)
    tree = prepare(TreeRequest(path=fakelinux), s, null_progress())
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_NETFILTER=y\n")

    def boot(pc: PatchCheck, built: kbuild.BuildResult) -> BootCheck:
        if pc.number == 2:
            raise KeyboardInterrupt
        return BootCheck("ok", 1.0)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(KeyboardInterrupt):
        check_series(tree, "series", Profile("t", "", (frag,)), s, null_progress(), run_dir,
                     w1=False, checkpatch=False,
                     configs=(MatrixConfig("t", (), "full", "quick"),), boot=boot)
    kept = CheckReport.from_json(json.loads((run_dir / "check.json").read_text()))
    assert [(p.number, p.builds_ok) for p in kept.patches] == [(1, True)]


def _selectors(tree: Path) -> dict[str, set[str]]:
    """Symbol -> the symbols whose Kconfig entry selects it (unconditionally)."""
    import re

    out: dict[str, set[str]] = {}
    for kconfig in tree.rglob("Kconfig*"):
        current = None
        for line in kconfig.read_text(errors="replace").splitlines():
            m = re.match(r"(?:menu)?config (\w+)\s*$", line)
            if m:
                current = m[1]
                continue
            m = re.match(r"\s+select (\w+)\s*$", line)
            if m and current:
                out.setdefault(m[1], set()).add(current)
    return out


def test_what_the_matrix_turns_off_stays_off() -> None:
    """NF_NAT=n alone came back as y (NFT_NAT, IP_NF_NAT and IP6_NF_NAT
    select it) and the nf_nat=n build failed at patch 1 in the first full
    matrix run: a config that turns a symbol off must turn off, too, what
    selects it and is on in the profile it starts from."""
    import os
    import pwd

    import pytest

    from patchgen import matrix
    from patchgen.settings import load

    cache = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "patchgen"
    built = sorted(cache.glob("build/debian-6.1*/selftests/.config"))
    tree = next(iter(sorted(cache.glob("trees/debian-6.1"))), None)
    if not built or tree is None:
        pytest.skip("no 6.1 tree and profile build in ~/.cache/patchgen (README command 1)")
    on = {line.split("=")[0].removeprefix("CONFIG_")
          for line in built[0].read_text().splitlines() if line.endswith(("=y", "=m"))}
    selectors = _selectors(tree)
    configs = matrix.load(load(Path("/nonexistent-cache")).kernel_config_dir)
    missing = {}
    for cfg in configs:
        if cfg.base != "profile" or cfg.arch != "x86_64":
            continue
        off = {e.name for e in cfg.settings if e.value == "n"}
        for symbol in off:
            left = (selectors.get(symbol, set()) & on) - off
            if left:
                missing[(cfg.name, symbol)] = sorted(left)
    assert missing == {}
