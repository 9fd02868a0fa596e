"""The one door to git.

Every git command patchgen runs goes through ``Git.run``: ``git -C <dir>
...`` argv lists run by ``patchgen.proc`` (logged, with timeouts, a
missing git reported as a missing tool, no process left behind on
Ctrl-C).  The identity to commit, format and tag with is
patchgen.identity's; ``identity_env`` says it to git.  Nothing here ever
changes the current directory or the user's checked-out branch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from patchgen import proc
from patchgen.errors import CommandFailed, UserError


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


def identity_env(*, author: Identity | None = None, committer: Identity | None = None,
                 date: str | None = None) -> dict[str, str]:
    """The environment git takes an author, a committer and their date from."""
    env: dict[str, str] = {}
    if author is not None:
        env |= {"GIT_AUTHOR_NAME": author.name, "GIT_AUTHOR_EMAIL": author.email}
    if committer is not None:
        env |= {"GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email}
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return env


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    author: Identity
    body: str


class Git:
    """A repository (or worktree) at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- plumbing -----------------------------------------------------------
    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> proc.Completed:
        argv = ["git", "--no-pager", "-C", str(self.path), *args]
        return proc.run(argv, env=env, input=input, check=check, timeout=timeout)

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    # -- queries ------------------------------------------------------------
    @staticmethod
    def is_repo(path: Path) -> bool:
        """``path`` is the top of a git work tree (not merely somewhere inside one)."""
        if not path.is_dir():
            return False
        res = Git(path).run("rev-parse", "--show-cdup", check=False)
        return res.returncode == 0 and res.stdout.strip() == ""

    def rev_parse(self, rev: str) -> str:
        try:
            return self.out("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except CommandFailed as exc:
            raise UserError(f"unknown revision in {self.path}: {rev}") from exc

    def current_branch(self) -> str | None:
        res = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return res.stdout.strip() if res.returncode == 0 else None

    def head(self) -> str:
        return self.rev_parse("HEAD")

    def dirty_files(self) -> list[str]:
        """Tracked files with changes (staged or not); untracked files are ignored."""
        # Not out(): its strip() would eat the first status column of an
        # unstaged change (" M path"), and with it a letter of the path.
        out = self.run("status", "--porcelain", "-z", "--untracked-files=no").stdout
        entries = iter(out.split("\0"))
        files = []
        for entry in entries:
            if not entry:
                continue
            files.append(entry[3:])
            if entry[0] in "RC":
                next(entries, None)  # -z gives a rename's old path as its own entry
        return files

    def commit_info(self, rev: str) -> CommitInfo:
        out = self.run("show", "-s", "--format=%H%x00%an%x00%ae%x00%B", rev).stdout
        sha, name, email, message = out.split("\0", 3)
        subject, _, body = message.partition("\n")
        return CommitInfo(sha, subject, Identity(name, email), body.strip("\n"))

    def log_shas(self, rev_range: str) -> list[str]:
        out = self.out("rev-list", "--reverse", rev_range)
        return out.split()

    def not_a_patch(self, sha: str) -> str | None:
        """Why git format-patch makes no patch of commit ``sha`` (None: it does)."""
        parents = self.out("rev-list", "--parents", "-n", "1", sha).split()[1:]
        if len(parents) != 1:
            return "is a merge" if parents else "has no parent"
        same = self.run("diff-tree", "--quiet", parents[0], sha, check=False).returncode == 0
        return "changes nothing" if same else None

    def worktrees(self) -> list[Path]:
        out = self.out("worktree", "list", "--porcelain")
        return [Path(line[9:]) for line in out.splitlines() if line.startswith("worktree ")]

    def checked_out(self) -> dict[str, Path]:
        """Branches checked out in the worktrees of this repository (the main
        one included): branch name -> where."""
        out: dict[str, Path] = {}
        where = None
        for line in self.out("worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                where = Path(line[9:])
            elif line.startswith("branch refs/heads/") and where is not None:
                out[line.removeprefix("branch refs/heads/")] = where
        return out

    def branch_name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be a new or replaced branch; None: it can."""
        res = self.run("check-ref-format", "--branch", name, check=False)
        if res.returncode != 0 or res.stdout.strip() != name or name.startswith("refs/") \
                or name in ("HEAD", "@"):
            return "not a valid branch name (git check-ref-format --branch)"
        heads = set(self.out("for-each-ref", "--format=%(refname:short)",
                             "refs/heads/").split())
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in heads:
                return f"branch {'/'.join(parts[:i])} exists, so no branch can be under it"
        if any(h.startswith(name + "/") for h in heads):
            return f"branches exist under {name}/"
        return None

    def worktree_locked(self, where: Path) -> bool:
        """``where`` is a worktree of this repository that git marks locked."""
        entry = None
        for line in self.out("worktree", "list", "--porcelain").splitlines():
            if line.startswith("worktree "):
                entry = Path(line[9:])
            elif line.startswith("locked") and entry is not None \
                    and entry.resolve() == where.resolve():
                return True
        return False

    # -- changes (never to the user's checkout) -------------------------------
    def init(self, *, initial_branch: str) -> None:
        proc.run(["git", "init", "-q", "-b", initial_branch, str(self.path)])

    def commit_all(self, message: str, *, author: Identity, date: str) -> str:
        """Stage everything and commit with a fixed identity and date (reproducible)."""
        self.run("add", "-A")
        env = identity_env(author=author, committer=author, date=date)
        self.run("-c", "commit.gpgsign=false", "commit", "-q", "--no-verify", "-F", "-",
                 env=env, input=message)
        return self.head()

    def add_worktree(self, where: Path, rev: str) -> None:
        """Check ``rev`` out at ``where``; all of it, or (on any error or Ctrl-C) nothing.

        git marks a worktree "locked (initializing)" until its checkout is
        complete; one killed on the way (SIGKILL, a machine that went down)
        leaves it so, and 'prune' never removes a locked worktree: such a
        leftover at ``where`` is removed first.
        """
        self.remove_worktree(where)
        try:
            self.run("worktree", "add", "--detach", "-f", str(where), rev)
        except BaseException:  # Ctrl-C included
            with proc.uninterrupted():  # a second Ctrl-C must not cut this short
                self.remove_worktree(where)
            raise

    def remove_worktree(self, where: Path) -> None:
        """Remove the worktree at ``where`` and its files, if there is one, locked or not."""
        # --force twice: a locked worktree too (git's own rule).
        self.run("worktree", "remove", "--force", "--force", str(where), check=False)
        self.run("worktree", "prune")

    def checkout_detached(self, rev: str) -> None:
        """Only ever used on a worktree patchgen owns."""
        self.run("checkout", "-q", "--detach", "-f", rev)

    def update_ref(self, ref: str, new: str, old: str | None = None,
                   message: str | None = None) -> None:
        """``message``: what the ref's reflog says of the change (a reflog is
        made for it even where core.logAllRefUpdates is off)."""
        args = ["update-ref", *(["--create-reflog", "-m", message] if message else []), ref, new]
        if old is not None:
            args.append(old)
        self.run(*args)

    def reflog_shas(self, ref: str, message: str) -> set[str]:
        """The commits ``ref`` was set to by changes whose reflog message is ``message``."""
        res = self.run("reflog", "show", "--format=%H%x00%gs", ref, "--", check=False)
        return {sha for sha, _, said in (line.partition("\0") for line in res.stdout.splitlines())
                if said == message}


def git_date(date: str) -> str:
    """--date as git's own "@<seconds> <zone>": git reads ISO 8601 its own
    way (it took 0001-01-01 for 2001 and refused 20261130 late), so it gets
    the moment Python read.  No zone: UTC."""
    try:
        when = dt.datetime.fromisoformat(date)
    except ValueError:
        raise UserError(f"--date {date!r}: not a date",
                        hint="ISO 8601, e.g. 2026-11-30T12:00:00+00:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if not 1970 <= when.astimezone(dt.UTC).year <= 2099:
        raise UserError(f"--date {date!r}: not between 1970 and 2099")
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"@{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
