"""The committer identity, read through git, refused when missing or a placeholder.

Each test sets its own identity through GIT_CONFIG_GLOBAL (a file of its
own) or GIT_COMMITTER_*: the machine's global identity may itself be a
placeholder, and must not decide these tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchgen.errors import ExitCode, UserError
from patchgen.git import Identity
from patchgen.identity import committer_identity, is_placeholder_email


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def _global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    cfg = tmp_path / "gitconfig"
    cfg.write_text(text)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)


def test_the_configured_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchgen.git import Git

    _global(tmp_path, monkeypatch, "[user]\n\tname = Ada Dev\n\temail = ada@kernel.org\n")
    assert committer_identity(Git(_repo(tmp_path))) == Identity("Ada Dev", "ada@kernel.org")


def test_the_environment_wins_as_it_does_for_git(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from patchgen.git import Git

    _global(tmp_path, monkeypatch, "[user]\n\tname = Ada Dev\n\temail = ada@kernel.org\n")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Bo Dev")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bo@netfilter.org")
    assert committer_identity(Git(_repo(tmp_path))) == Identity("Bo Dev", "bo@netfilter.org")


def test_no_identity_is_bad_input_with_gits_own_hint(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from patchgen.git import Git

    # useConfigOnly: git must not guess root@host from this machine.
    _global(tmp_path, monkeypatch, "[user]\n\tuseConfigOnly = true\n")
    with pytest.raises(UserError) as info:
        committer_identity(Git(_repo(tmp_path)))
    assert info.value.exit_code == ExitCode.USER_ERROR
    assert info.value.message == ("no git identity: no email was given and auto-detection "
                                  "is disabled")
    assert info.value.hint is not None
    _hint_proposes_no_placeholder(info.value.hint)
    assert 'git config --global user.name "Your Name"' in info.value.hint


def test_a_guessed_identity_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config at all: git guesses user@host, which is no address either."""
    from patchgen.git import Git

    _global(tmp_path, monkeypatch, "")
    with pytest.raises(UserError) as info:
        committer_identity(Git(_repo(tmp_path)))
    assert info.value.hint is not None and "git config --global user.email" in info.value.hint


def test_a_placeholder_identity_is_refused(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from patchgen.git import Git

    _global(tmp_path, monkeypatch, "[user]\n\tname = Seed 2bcad48c maintainers\n"
            "\temail = maintainers@users.noreply.r-seed-2bcad48c.example\n")
    with pytest.raises(UserError, match=r"is a placeholder \(users\.noreply\.r-seed-2bcad48c"
                                        r"\.example is not a real mail domain\)") as info:
        committer_identity(Git(_repo(tmp_path)))
    assert info.value.hint is not None and "git config --global user.email" in info.value.hint
    _hint_proposes_no_placeholder(info.value.hint)


def _hint_proposes_no_placeholder(hint: str | None) -> None:
    """git's own hint says "you@example.com": a user who copies it is refused
    by the very check that printed it."""
    import re

    assert hint is not None and "git config --global user.email" in hint
    for email in re.findall(r"[^\s\"<>]+@[^\s\"<>]+", hint):
        assert not is_placeholder_email(email), f"the hint proposes {email}"


@pytest.mark.parametrize("email", [
    "maintainers@users.noreply.r-seed-2bcad48c.example", "you@example.com", "a@example.org",
    "a@example.net", "a@mail.example.com", "a@x.invalid", "a@foo.test", "a@host.localhost",
    "patchgen@localhost", "root@vm.(none)", "a@nodot", "no-at-sign", "a@",
])
def test_placeholder_emails(email: str) -> None:
    assert is_placeholder_email(email)


@pytest.mark.parametrize("email", [
    "fw@strlen.de", "dev@patchgen.dev", "a@example.co.uk", "a@myexample.com", "a@testing.org",
])
def test_real_emails(email: str) -> None:
    assert not is_placeholder_email(email)
