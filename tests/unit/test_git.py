"""The git door on real (small) repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from patchgen.git import Git


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "r"
    repo.mkdir()
    for name in ("a.c", "b.c", "c.c"):
        (repo / name).write_text(f"{name}\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "base"], check=True)
    return repo


def test_dirty_files_unstaged_staged_and_renamed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    (repo / "a.c").write_text("changed\n")  # " M a.c": starts with a space
    subprocess.run(["git", "-C", str(repo), "mv", "b.c", "renamed.c"], check=True)
    (repo / "new.txt").write_text("untracked\n")
    assert sorted(Git(repo).dirty_files()) == ["a.c", "renamed.c"]


def test_clean_repository_has_no_dirty_files(tmp_path: Path) -> None:
    assert Git(_repo(tmp_path)).dirty_files() == []
