"""'patchgen prep' on the miniature tree: identity, outputs, versions, no questions.

The series is committed once per test with the library; prep itself runs
in-process (library) or as the real CLI (the terminal test).  Each test
chooses its own committer identity: the machine's may be a placeholder.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchgen import outputs, prep, settings
from patchgen.errors import PatchgenError, UserError
from patchgen.progress import null_progress
from patchgen.series import generate
from patchgen.series.render import Renderer
from patchgen.tree import Tree, TreeRequest, prepare
from tests.series_helpers import plan_for

ROOT = Path(__file__).resolve().parents[2]
BRANCH = "patchgen/nf-hook-bpf"
GOOD = {"GIT_COMMITTER_NAME": "Ada Dev", "GIT_COMMITTER_EMAIL": "ada@kernel.org"}


@pytest.fixture
def good_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in GOOD.items():
        monkeypatch.setenv(k, v)


def _commit(tree_path: Path, cache: Path, branch: str = BRANCH,
            date: str = "2026-01-01T00:00:00+0000") -> None:
    generate.commit(plan_for(tree_path, cache), branch, date, keep_dates=True)


def _prep(tree_path: Path, cache: Path, branch: str = BRANCH) -> prep.Prepared:
    s = settings.load(cache)
    tree = prepare(TreeRequest(path=tree_path), s, null_progress())
    return prep.prep(tree, prep.PrepRequest(branch=branch), s, Renderer(s.templates_dir),
                     generate.load_spec(s.templates_dir))


def _tree(tree_path: Path, cache: Path) -> Tree:
    return prepare(TreeRequest(path=tree_path), settings.load(cache), null_progress())


def _tags(repo: Path) -> list[str]:
    return subprocess.run(["git", "-C", str(repo), "tag", "--list"], capture_output=True,
                          text=True, check=True).stdout.split()


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


# -- identity (item 3) ----------------------------------------------------------------
def test_no_identity_is_refused_before_anything_is_written(
        fakenet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    cfg = tmp_path / "no-identity"
    cfg.write_text("[user]\n\tuseConfigOnly = true\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    with pytest.raises(UserError) as info:
        _prep(fakenet, cache)
    assert info.value.message.startswith("no git identity")
    assert info.value.hint is not None
    assert 'git config --global user.email "<your address>"' in info.value.hint
    assert not (cache / "prep").exists()
    assert _tags(fakenet) == []


def test_a_placeholder_identity_is_refused(fakenet: Path, tmp_path: Path) -> None:
    """The test suite's own global identity is test@example.org: a placeholder."""
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    with pytest.raises(UserError, match=r"Test User <test@example\.org> is a placeholder"):
        _prep(fakenet, cache)
    assert not (cache / "prep").exists()


@pytest.mark.usefixtures("good_identity")
@pytest.mark.parametrize("where", ["top", "middle"])
def test_a_commit_that_changes_nothing_is_refused_before_anything(
        fakenet: Path, tmp_path: Path, where: str) -> None:
    """git format-patch leaves an empty commit out: the patch files and the
    commits no longer paired up, so each check judged a neighbour's patch."""
    cache = tmp_path / "cache"
    _commit(fakenet, cache)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(fakenet), *args], capture_output=True,
                              text=True, check=True).stdout.strip()

    shas = git("rev-list", "--reverse", f"main..{BRANCH}").split()
    at = shas[-1] if where == "top" else shas[1]
    empty = git("commit-tree", f"{at}^{{tree}}", "-p", at, "-m", "netfilter: nothing at all")
    tip = empty
    for sha in shas[shas.index(at) + 1:]:
        tip = git("commit-tree", f"{sha}^{{tree}}", "-p", tip, "-m", git("log", "-1",
                                                                           "--format=%B", sha))
    git("update-ref", f"refs/heads/{BRANCH}", tip)
    number = shas.index(at) + 2
    with pytest.raises(UserError, match=rf"patch {number} \({empty[:12]} netfilter: nothing "
                       r"at all\) changes nothing"):
        _prep(fakenet, cache)
    assert not (cache / "prep").exists()


@pytest.mark.usefixtures("good_identity")
def test_mark_sent_after_a_failed_check_tags_nothing(fakenet: Path, tmp_path: Path) -> None:
    """--mark-sent tagged the version as sent and exited 1; --send in the same
    state refuses without --force."""
    from patchgen.commands.prep import Delivery, PrepCommandRequest, run

    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    req = PrepCommandRequest(TreeRequest(path=fakenet), mark_sent=True)
    out = run(req, settings.load(cache), null_progress(), on_prepared=lambda done: None,
              confirm=lambda done: False)
    assert not out.prepared.ok  # the miniature tree has no checkpatch.pl, no check run
    assert out.delivery is Delivery.REFUSED and out.tag is None
    assert _tags(fakenet) == []
    forced = run(PrepCommandRequest(TreeRequest(path=fakenet), mark_sent=True, force=True),
                 settings.load(cache), null_progress(), on_prepared=lambda done: None,
                 confirm=lambda done: False)
    assert forced.delivery is Delivery.MARKED and _tags(fakenet) == [forced.tag]


# -- outputs: per branch, swapped in only when complete (item 3) --------------------------
@pytest.mark.usefixtures("good_identity")
def test_each_branch_has_its_own_output(fakenet: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    _commit(fakenet, cache, branch="topic/other")
    a = _prep(fakenet, cache)
    b = _prep(fakenet, cache, branch="topic/other")
    assert a.outdir != b.outdir
    assert a.outdir.name == b.outdir.name == "v1"
    assert a.outdir.is_relative_to(cache / "prep") and b.outdir.is_relative_to(cache / "prep")
    assert all(f.exists() for f in a.files + b.files)


@pytest.mark.usefixtures("good_identity")
@pytest.mark.parametrize("branch", [BRANCH, "topic/other"])
def test_a_failed_prep_keeps_the_earlier_good_one(fakenet: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  branch: str) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    _commit(fakenet, cache, branch="topic/other")
    good = _prep(fakenet, cache)
    before = _snapshot(good.outdir)

    def broken(*args: object, **kwargs: object) -> str:
        raise PatchgenError("git send-email --dry-run failed: simulated")

    monkeypatch.setattr(prep, "send_email", broken)
    _commit(fakenet, cache, branch=branch, date="2027-01-02T03:04:05+0000")  # new patches
    with pytest.raises(PatchgenError, match="simulated"):
        _prep(fakenet, cache, branch=branch)
    assert _snapshot(good.outdir) == before
    stray = [p for p in (cache / "prep").rglob("*")
             if p.name.startswith(".") and p.name != outputs.MARKER]
    assert stray == []


@pytest.mark.usefixtures("good_identity")
@pytest.mark.parametrize("where", ["mine", "tree", "file"])
def test_prep_output_never_replaces_what_it_did_not_write(fakenet: Path, tmp_path: Path,
                                                          where: str) -> None:
    """prep puts its new output in place of the old one whole: pointed at a
    directory of the user's (or at their kernel tree) it deleted what was there."""
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.txt").write_text("years of work\n")
    (tmp_path / "afile").write_text("keep\n")
    target = {"mine": mine, "tree": fakenet, "file": tmp_path / "afile"}[where]
    before = _snapshot(target) if target.is_dir() else {"": target.read_bytes()}
    s = settings.load(cache)
    with pytest.raises(UserError, match="--output") as info:
        prep.prep(_tree(fakenet, cache), prep.PrepRequest(branch=BRANCH, output=target), s,
                  Renderer(s.templates_dir), generate.load_spec(s.templates_dir))
    assert info.value.exit_code == 2
    after = _snapshot(target) if target.is_dir() else {"": target.read_bytes()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.usefixtures("good_identity")
def test_prep_output_replaces_its_own_earlier_output(fakenet: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    out = tmp_path / "out"
    s = settings.load(cache)

    def run() -> prep.Prepared:
        return prep.prep(_tree(fakenet, cache), prep.PrepRequest(branch=BRANCH, output=out), s,
                         Renderer(s.templates_dir), generate.load_spec(s.templates_dir))

    first = run()
    assert outputs.made_by(out, "prep") and first.files
    second = run()
    assert second.outdir == out.resolve() and all(f.exists() for f in second.files)


# -- versions (item 8) ------------------------------------------------------------------
@pytest.mark.usefixtures("good_identity")
def test_dry_runs_use_up_no_version(fakenet: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    first = _prep(fakenet, cache)
    again = _prep(fakenet, cache)
    assert (first.version, again.version) == (1, 1)
    assert again.previous is None
    assert _tags(fakenet) == []


@pytest.mark.usefixtures("good_identity")
def test_marking_sent_runs_no_gpg_even_where_tags_are_signed(fakenet: Path,
                                                             tmp_path: Path) -> None:
    """With tag.gpgSign=true git tag ran gpg, which may ask for a passphrase:
    no prompt but ours reaches the terminal.  The tag is a local record."""
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    v1 = _prep(fakenet, cache)
    called = tmp_path / "gpg-called"
    gpg = tmp_path / "gpg"
    gpg.write_text(f"#!/bin/sh\ntouch {called}\nexit 1\n")
    gpg.chmod(0o755)
    for key, value in (("tag.gpgSign", "true"), ("gpg.program", str(gpg))):
        subprocess.run(["git", "-C", str(fakenet), "config", key, value], check=True)
    tag = prep.mark_sent(_tree(fakenet, cache), BRANCH, v1)
    assert _tags(fakenet) == [tag]
    assert not called.exists()


@pytest.mark.usefixtures("good_identity")
def test_a_sent_version_is_tagged_once_and_the_next_is_vn_plus_1(fakenet: Path,
                                                                  tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    v1 = _prep(fakenet, cache)
    tag = prep.mark_sent(_tree(fakenet, cache), BRANCH, v1)
    assert tag == "patchgen/nf-hook-bpf/v1"  # not patchgen/patchgen/...
    assert _tags(fakenet) == [tag]
    msg = subprocess.run(["git", "-C", str(fakenet), "tag", "-l", "--format=%(taggername) "
                          "%(taggeremail)%0a%(contents)", tag], capture_output=True,
                         text=True, check=True).stdout
    assert msg.startswith("Ada Dev <ada@kernel.org>\n")
    assert f"base {_tree(fakenet, cache).base}" in msg
    # The same commits again: still v1 (a resend), nothing to compare with.
    same = _prep(fakenet, cache)
    assert (same.version, same.previous) == (1, None)
    # New commits: v2, with a range-diff against the v1 that was sent.
    _commit(fakenet, cache, date="2027-01-02T03:04:05+0000")
    v2 = _prep(fakenet, cache)
    assert (v2.version, v2.previous) == (2, tag)
    assert v2.outdir.name == "v2" and v1.outdir.exists()
    assert "Range-diff against v1:" in v2.files[0].read_text()


# -- no questions on the terminal (item 2) ------------------------------------------------
def test_prep_asks_nothing_on_the_terminal(fakenet: Path, tmp_path: Path) -> None:
    """git send-email --dry-run asked "To whom should the emails be sent" on /dev/tty."""
    import pty

    cache = tmp_path / "cache"
    _commit(fakenet, cache)
    argv = [sys.executable, "-m", "patchgen", "--cache", str(cache), "prep", "--tree",
            str(fakenet)]
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.chdir(ROOT)
        os.environ.update(GOOD)
        os.execv(sys.executable, argv)
    seen, status = _read_until_exit(pid, fd, timeout=60)
    assert "To whom" not in seen and "In-Reply-To" not in seen, seen
    assert status is not None, f"prep still waits on the terminal:\n{seen}"
    assert "nothing sent" in seen, seen


def _read_until_exit(pid: int, fd: int, timeout: float) -> tuple[str, int | None]:
    out = b""
    deadline = time.monotonic() + timeout
    status: int | None = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            with contextlib.suppress(OSError):  # EIO: the child side is closed
                out += os.read(fd, 65536)
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = code
            break
    if status is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    return out.decode(errors="replace"), status
