"""The one wrapper over git.

Commands that change a repository go through ``patchgen.proc`` as
``git -C <dir> ...`` argv lists; reads that are easier with objects
(commit metadata) use GitPython, imported only once git is known to be on
PATH.  The identity to commit, format and tag with is patchgen.identity's.
Nothing here ever changes the current directory or the user's
checked-out branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from patchgen import proc
from patchgen.errors import CommandFailed, UserError


def _gitpython() -> ModuleType:
    """GitPython, imported once git itself is known to be there.

    Importing it without git on PATH fails with a long traceback that
    tells the user to export GIT_PYTHON_REFRESH; a missing git is a
    missing tool like any other (exit 4, with the package to install).
    """
    proc.require("git")
    import git as gitpython

    return gitpython


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


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

    def _repo(self) -> Any:
        gitpython = _gitpython()
        try:
            return gitpython.Repo(self.path)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError) as exc:
            raise UserError(f"not a git repository: {self.path}") from exc

    # -- queries ------------------------------------------------------------
    @staticmethod
    def is_repo(path: Path) -> bool:
        gitpython = _gitpython()
        try:
            gitpython.Repo(path)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            return False
        return True

    def toplevel(self) -> Path:
        return Path(self.out("rev-parse", "--show-toplevel"))

    def rev_parse(self, rev: str) -> str:
        try:
            return self.out("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except CommandFailed as exc:
            raise UserError(f"unknown revision in {self.path}: {rev}") from exc

    def branch_exists(self, name: str) -> bool:
        res = self.run("show-ref", "--verify", "--quiet", f"refs/heads/{name}", check=False)
        return res.returncode == 0

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

    def identity(self) -> Identity | None:
        reader = self._repo().config_reader()
        try:
            name = str(reader.get_value("user", "name"))
            email = str(reader.get_value("user", "email"))
        except Exception:  # configparser raises several unrelated types
            return None
        return Identity(name, email)

    def commit_info(self, rev: str) -> CommitInfo:
        commit = self._repo().commit(rev)
        message = str(commit.message)
        subject, _, body = message.partition("\n")
        author = Identity(str(commit.author.name), str(commit.author.email))
        return CommitInfo(commit.hexsha, subject, author, body.strip("\n"))

    def log_shas(self, rev_range: str) -> list[str]:
        out = self.out("rev-list", "--reverse", rev_range)
        return out.split()

    def worktrees(self) -> list[Path]:
        out = self.out("worktree", "list", "--porcelain")
        return [Path(line[9:]) for line in out.splitlines() if line.startswith("worktree ")]

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
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": author.name,
            "GIT_COMMITTER_EMAIL": author.email,
            "GIT_COMMITTER_DATE": date,
        }
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

    def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        args = ["update-ref", ref, new]
        if old is not None:
            args.append(old)
        self.run(*args)

    def delete_ref(self, ref: str) -> None:
        self.run("update-ref", "-d", ref, check=False)

    def config_get(self, key: str) -> str | None:
        res = self.run("config", "--get", key, check=False)
        return res.stdout.strip() if res.returncode == 0 else None


def paths_arg(paths: Sequence[str]) -> list[str]:
    return ["--", *paths]
