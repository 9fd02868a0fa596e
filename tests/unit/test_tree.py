"""Bad input gets a clear error and changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchgen import settings
from patchgen.errors import UserError
from patchgen.probe import KernelVersion, probe_tree, read_version
from patchgen.progress import null_progress
from patchgen.tree import TreeRequest, known_sources, prepare, worktree


def _prepare(req: TreeRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    return prepare(req, settings.load(tmp_path / "cache"), null_progress())


def test_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unknown kernel version '5\.4'; known: 6\.1, 6\.12"):
        _prepare(TreeRequest(version="5.4"), tmp_path)


def test_not_a_kernel_tree(tmp_path: Path) -> None:
    d = tmp_path / "notkernel"
    d.mkdir()
    (d / "README").write_text("hello")
    with pytest.raises(UserError, match="not a kernel tree"):
        _prepare(TreeRequest(path=d), tmp_path)


def test_a_repository_with_only_a_version_and_core_c_is_no_kernel_tree(
        tmp_path: Path) -> None:
    """It passed the check, printed its facts (every one of them absent) and
    failed only in generate, at patch 1."""
    import subprocess

    d = tmp_path / "mini"
    (d / "net" / "netfilter").mkdir(parents=True)
    (d / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    (d / "net" / "netfilter" / "core.c").write_text("")
    subprocess.run(["git", "init", "-q", str(d)], check=True)
    subprocess.run(["git", "-C", str(d), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(d), "-c", "user.name=A", "-c", "user.email=a@b.dev",
                    "commit", "-qm", "x"], check=True)
    with pytest.raises(UserError, match=r"not a kernel tree \(no Kconfig, "
                       r"include/linux/netfilter\.h, scripts/kconfig/merge_config\.sh\)"):
        _prepare(TreeRequest(path=d), tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such directory"):
        _prepare(TreeRequest(path=tmp_path / "nope"), tmp_path)


def test_not_a_git_repository(tmp_path: Path) -> None:
    import shutil
    d = tmp_path / "plain"
    shutil.copytree(Path(__file__).parent.parent / "fakelinux", d)
    with pytest.raises(UserError, match="not a git repository"):
        _prepare(TreeRequest(path=d), tmp_path)


def test_dirty_tree_is_refused_and_left_as_it_was(fakelinux: Path, tmp_path: Path) -> None:
    core = fakelinux / "net" / "netfilter" / "core.c"
    core.write_text(core.read_text() + "/* local change */\n")
    before = subprocess.run(["git", "-C", str(fakelinux), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    with pytest.raises(UserError, match=r"uncommitted changes .*core\.c"):
        _prepare(TreeRequest(path=fakelinux), tmp_path)
    after = subprocess.run(["git", "-C", str(fakelinux), "status", "--porcelain"],
                           capture_output=True, text=True, check=True).stdout
    assert before == after
    assert "/* local change */" in core.read_text()


def test_untracked_files_do_not_make_a_tree_dirty(fakelinux: Path, tmp_path: Path) -> None:
    (fakelinux / "notes.txt").write_text("mine")
    tree = _prepare(TreeRequest(path=fakelinux), tmp_path)
    assert tree.version == KernelVersion(6, 1, 99)


def test_too_old_version(fakelinux: Path, tmp_path: Path) -> None:
    mk = fakelinux / "Makefile"
    mk.write_text(mk.read_text().replace("PATCHLEVEL = 1", "PATCHLEVEL = 0").replace(
        "VERSION = 6", "VERSION = 5"))
    subprocess.run(["git", "-C", str(fakelinux), "commit", "-qam", "old"], check=True)
    with pytest.raises(UserError, match="older than any tree patchgen supports"):
        _prepare(TreeRequest(path=fakelinux), tmp_path)


def test_user_tree_is_used_in_place_and_worktree_leaves_branch_alone(
        fakelinux: Path, tmp_path: Path) -> None:
    s = settings.load(tmp_path / "cache")
    tree = prepare(TreeRequest(path=fakelinux), s, null_progress())
    head_before = subprocess.run(["git", "-C", str(fakelinux), "rev-parse", "--abbrev-ref",
                                  "HEAD"], capture_output=True, text=True).stdout
    wt = worktree(tree, s)
    assert (wt / "Makefile").exists()
    assert wt != fakelinux
    head_after = subprocess.run(["git", "-C", str(fakelinux), "rev-parse", "--abbrev-ref",
                                 "HEAD"], capture_output=True, text=True).stdout
    assert head_before == head_after
    assert tree.base == subprocess.run(["git", "-C", str(wt), "rev-parse", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()


def test_probe_fake_tree(fakelinux: Path) -> None:
    facts = probe_tree(fakelinux)
    assert str(facts.version) == "6.1.99"
    assert facts.nf_reinject_file == "net/netfilter/nf_queue.c"
    assert facts.retpoline_symbol == "RETPOLINE"
    assert facts.selftests_dir is None
    assert facts.has_clusterip is False


def test_read_version_rejects_non_kernel_makefile(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("all:\n\techo hi\n")
    with pytest.raises(UserError, match="no VERSION/PATCHLEVEL"):
        read_version(tmp_path)


def test_known_sources_are_debian_packages() -> None:
    src = known_sources()
    assert src["6.1"].package == "linux-source-6.1"
    assert src["6.12"].suites == ("bookworm-backports",)


@pytest.mark.parametrize("staged", [False, True])
def test_dirty_tree_message_names_each_file_whole(fakelinux: Path, tmp_path: Path,
                                                  staged: bool) -> None:
    """An unstaged change's status line starts with a space: that space is a column."""
    (fakelinux / "Makefile").write_text((fakelinux / "Makefile").read_text() + "# mine\n")
    core = fakelinux / "net" / "netfilter" / "core.c"
    core.write_text(core.read_text() + "/* local change */\n")
    if staged:
        subprocess.run(["git", "-C", str(fakelinux), "add", "-A"], check=True)
    with pytest.raises(UserError) as info:
        _prepare(TreeRequest(path=fakelinux), tmp_path)
    assert "(2 files: Makefile, net/netfilter/core.c)" in info.value.message


def test_an_empty_version_is_refused_when_the_request_is_made() -> None:
    """'--version ""' once meant the default (6.1) without a word."""
    with pytest.raises(UserError, match=r"unknown kernel version ''; known: 6\.1, 6\.12"):
        TreeRequest(version="")


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    f = tmp_path / "passwd"
    f.write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(UserError, match=r"^not a directory: .*passwd$"):
        TreeRequest(path=f)


def _fake_debian_tarball(tmp_path: Path) -> Path:
    """A linux-source-6.1.tar.xz holding the fake kernel tree."""
    import shutil
    import tarfile

    src = tmp_path / "pkg" / "linux-source-6.1"
    shutil.copytree(Path(__file__).parent.parent / "fakelinux", src)
    tarball = tmp_path / "pkg" / "linux-source-6.1.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        tar.add(src, arcname="linux-source-6.1")
    shutil.rmtree(src)
    return tarball


def _debian_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from patchgen import tree as trees

    tarball = _fake_debian_tarball(tmp_path)
    monkeypatch.setattr(trees, "_find_tarball", lambda src, s, p: (tarball, "6.1.99-1"))
    return settings.load(tmp_path / "cache"), tarball


def test_unpacking_without_the_space_it_needs_says_how_much_and_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchgen import space
    from patchgen.errors import InfraError

    s, tarball = _debian_request(tmp_path, monkeypatch)
    monkeypatch.setattr(space, "free_bytes", lambda where: 4096)
    with pytest.raises(InfraError) as info:
        prepare(TreeRequest(version="6.1"), s, null_progress())
    assert f"unpacking {tarball.name} needs about " in info.value.message
    assert f" in {s.trees}; 4.1 kB free" in info.value.message
    assert info.value.hint is not None and "--cache" in info.value.hint
    assert not s.trees.exists() or list(s.trees.iterdir()) == []


def test_tar_running_out_of_space_says_how_much_and_where(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while tar runs (the check before it cannot see other writers)."""
    import os

    from patchgen.errors import InfraError

    s, tarball = _debian_request(tmp_path, monkeypatch)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tar = bin_dir / "tar"
    tar.write_text("#!/bin/sh\necho 'tar: linux-source-6.1/Makefile: Cannot write: "
                   "No space left on device' >&2\nexit 2\n")
    tar.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(InfraError) as info:
        prepare(TreeRequest(version="6.1"), s, null_progress())
    assert info.value.message.startswith("no space left on device: unpacking "
                                         f"{tarball.name} needs about ")
    assert f" in {s.trees} (" in info.value.message
    assert list(s.trees.iterdir()) == []  # the half-unpacked tree is gone


def test_a_worktree_left_half_made_is_made_again(fakelinux: Path, tmp_path: Path) -> None:
    """A 'git worktree add' killed mid-checkout leaves a worktree that looks like a
    repository ("locked (initializing)", files missing): it must not be built in."""
    from tests.unit.test_git import killed_worktree_add

    s = settings.load(tmp_path / "cache")
    tree = prepare(TreeRequest(path=fakelinux), s, null_progress())
    where = s.worktrees / tree.id
    where.parent.mkdir(parents=True)
    killed_worktree_add(fakelinux, where)
    assert worktree(tree, s) == where
    listing = subprocess.run(["git", "-C", str(fakelinux), "worktree", "list", "--porcelain"],
                             capture_output=True, text=True, check=True).stdout
    assert "locked" not in listing
    status = subprocess.run(["git", "-C", str(where), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert status == ""  # every file checked out
