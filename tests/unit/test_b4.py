"""Pure parts of patchgen.b4: argv, the cover description, b4's dry-run output.

The outputs parsed here were seen in real runs of b4 0.16.0 on the 6.1 series
(b4 send -o on a private shared clone).
"""

from __future__ import annotations

from pathlib import Path

from patchgen import b4


def test_clone_shares_objects_and_writes_nothing_to_the_source() -> None:
    argv = b4.clone_argv(Path("/src"), "patchgen/nf-hook-bpf", Path("/tmp/x"))
    assert argv[:2] == ["git", "clone"]
    assert "--shared" in argv and "--no-checkout" in argv and "--single-branch" in argv
    assert argv[-2:] == ["/src", "/tmp/x"]
    assert argv[argv.index("--branch") + 1] == "patchgen/nf-hook-bpf"


def test_enroll_keeps_the_commits() -> None:
    # The default strategy inserts an empty cover commit: every sha changes.
    argv = b4.enroll_argv("base")
    assert argv == ["b4", "-c", "b4.prep-cover-strategy=branch-description", "prep",
                    "--enroll", "base"]


def test_version_and_prefixes() -> None:
    assert b4.revision_argv(3) == ["b4", "prep", "--force-revision", "3"]
    assert b4.prefixes_argv("RFC PATCH nf-next") == ["b4", "prep", "--set-prefixes", "RFC",
                                                      "nf-next"]
    assert b4.prefixes_argv("PATCH") is None


def test_send_only_writes_files() -> None:
    argv = b4.send_argv(Path("/o/b4"))
    assert argv[argv.index("send"):] == ["send", "--output-dir", "/o/b4", "--no-sign"]
    assert b4.NO_SERVER in argv and "--reflect" not in argv


def test_cover_description_ends_with_recipients() -> None:
    text = b4.cover_description("subject\n\nbody\n\n", ["A <a@x>"], ["l@vger", "A <a@x>"])
    assert text == "subject\n\nbody\n\nTo: A <a@x>\nCc: l@vger\n"


def test_parse_sent() -> None:
    out = "Converted the branch to 11 messages\n---\nDRYRUN: Would have sent 11 messages\n"
    assert b4.parse_sent(out) == 11
    assert b4.parse_sent("CRITICAL: patatt.signingkey is not set\n") is None


def test_b4_never_gets_an_editor_or_a_prompt() -> None:
    assert b4.B4_ENV["GIT_TERMINAL_PROMPT"] == "0"
    assert b4.B4_ENV["EDITOR"] == b4.B4_ENV["GIT_EDITOR"] == "false"
