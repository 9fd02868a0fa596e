"""Send-ready series on 6.1: v1 (dry runs use up no version), marked sent,
regenerate, v2 with changelog and range-diff."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchgen.settings import default_cache
from tests.slow.conftest import COMMITTER, default_tree, patchgen, tree_git

pytestmark = pytest.mark.slow
BRANCH = "patchgen/nf-hook-bpf"
V1_TAG = f"{BRANCH}/v1"


def _git(*args: str) -> str:
    return tree_git(*args)


def test_prep_v1_then_v2(checked_series: tuple[str, Path]) -> None:
    # Tags of earlier runs, and of the old naming (patchgen/patchgen/...).
    for tag in _git("tag", "--list", "patchgen/*/v*").split():
        _git("tag", "-d", tag)
    # prep wants a check of exactly these commits: the session's.
    v1 = patchgen("prep", env=COMMITTER)
    assert "v1 in" in v1.stdout, v1.stdout + v1.stderr
    assert "nothing sent" in v1.stdout
    assert "[ok] git am onto the base: same tree as the branch" in v1.stdout
    assert "[ok] checkpatch --strict" in v1.stdout
    assert "git send-email --dry-run: 11 of 11 mails would go out" in v1.stdout
    assert "[ok] built by patchgen check" in v1.stdout

    # A dry run uses up no version: the same again is still v1, untagged.
    again = patchgen("prep", env=COMMITTER)
    assert "v1 in" in again.stdout and "range-diff" not in again.stdout
    assert _git("tag", "--list", "patchgen/*/v*").split() == []
    _b4_writes_the_same_series()
    marked = patchgen("prep", "--mark-sent", env=COMMITTER)
    assert f"v1 recorded as sent ({V1_TAG})" in marked.stdout, marked.stdout + marked.stderr
    assert _git("tag", "--list", "patchgen/*/v*").split() == [V1_TAG]

    # Regenerate (new commits, same patches) and prepare again: v2.
    v1_tip = _git("rev-parse", BRANCH).strip()
    try:
        _prep_v2_and_refuse_to_send()
    finally:
        # Leave the branch at the commits test_series_real checked and booted.
        _git("update-ref", f"refs/heads/{BRANCH}", v1_tip)


def _prep_v2_and_refuse_to_send() -> None:
    assert patchgen("generate", "--author", "Patch Gen <patchgen@patchgen.dev>", "--date",
                    "2027-01-02T03:04:05+0000").returncode == 0
    v2 = patchgen("prep", env=COMMITTER)
    assert "v2 in" in v2.stdout and f"range-diff against {V1_TAG}" in v2.stdout
    outdir = Path(v2.stdout.split("v2 in ", 1)[1].split()[0])
    cover = (outdir / "v2-0000-cover-letter.patch").read_text()
    assert ("Subject: [RFC PATCH nf-next v2 00/10] netfilter: bpf base hook program generator"
            in cover)
    assert "Changes in v2:" in cover and "Range-diff against v1:" in cover
    # format-patch cuts file names at 64 characters, the "v2-" prefix included.
    (patch4,) = outdir.glob("v2-0004-netfilter-make-hook-functions-*.patch")
    text = patch4.read_text()
    assert "Subject: [RFC PATCH nf-next v2 04/10]" in text
    # To: matches what get_maintainer.pl says for this patch.
    wt = default_cache() / "worktrees" / default_tree()["id"]
    people = subprocess.run(["perl", "scripts/get_maintainer.pl", "--no-git", "--no-git-fallback",
                             "--no-rolestats", "--m", "--no-r", "--no-l", str(patch4)],
                            cwd=wt, capture_output=True, text=True).stdout.splitlines()
    to_block = text.split("\nTo: ", 1)[1].split("\nCc: ", 1)[0]
    assert people and all(p.strip() in to_block for p in people)
    assert "bpf@vger.kernel.org" in text.split("\nCc: ", 1)[1].split("\nSubject:", 1)[0]

    # These commits were never checked: sending is refused without --force.
    refused = patchgen("prep", "--send", "--yes", env=COMMITTER)
    assert refused.returncode == 1
    assert "[FAIL] built by patchgen check" in refused.stdout
    assert "not sending (override with --force)" in refused.stderr


def _b4_writes_the_same_series() -> None:
    """prep --b4: b4's own rendition of exactly the checked commits, written
    from a private clone; the tree gets no b4 state and no new commits."""
    config, heads = _git("config", "--list", "--local"), _git("show-ref")
    with_b4 = patchgen("prep", "--b4", env=COMMITTER)
    assert "[ok] b4 send -o: 11 of 11 mails" in with_b4.stdout, with_b4.stdout + with_b4.stderr
    outdir = Path(with_b4.stdout.split("v1 in ", 1)[1].split()[0])
    (cover,) = (outdir / "b4").glob("0000-*")
    text = cover.read_text()
    # b4, like git format-patch, leaves v1 out of the subject.
    assert "Subject: [PATCH RFC nf-next 00/10] netfilter: bpf base hook program" in text
    assert "This series adds a generator of BPF programs" in text  # patchgen's cover letter
    assert _git("config", "--list", "--local") == config and _git("show-ref") == heads
