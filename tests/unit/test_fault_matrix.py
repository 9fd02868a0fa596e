"""The fault matrix: what a user meets when something is wrong, row by row.

Each row runs the real CLI (``python -m patchgen``, in its own session, as
a user would) against small trees in a temporary directory, with a fault
arranged by ``setup``, and asserts

* the exit code (README "Exit codes"),
* the message on stderr (and no Python traceback),
* that nothing was lost or left: the row's own ``intact`` check, no
  patchgen temporary directory left behind, no process of the run still
  alive.

The next fault found is a new row here and a new line in README's
"## Faults" table (test_readme_lists_every_row keeps them together).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from patchgen.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


@dataclass
class Env:
    """One row's world: a temporary HOME, cache, TMPDIR and trees."""

    tmp: Path
    vars: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    def git(self, repo: Path, *args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, env=self.vars).stdout

    def tree(self, name: str = "fakenet") -> Path:
        """A copy of tests/<name> as a git repository with one commit."""
        dst = self.tmp / name
        if not dst.exists():
            shutil.copytree(TESTS / name, dst)
            for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "base"]):
                self.git(dst, *args)
        return dst


Setup = Callable[[Env], list[str]]
Check = Callable[[Env], None]


def _nothing(env: Env) -> None:
    pass


@dataclass(frozen=True)
class Row:
    id: str
    fault: str  # what goes wrong (README)
    setup: Setup  # arranges the fault; returns the argv after "patchgen --cache C"
    code: ExitCode
    message: str  # on stderr
    intact: Check = _nothing  # nothing lost, nothing left
    interrupt_when: Callable[[Env], bool] | None = None  # Ctrl-C once this is true
    timeout: float = 120


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_patchgen(env: Env, argv: list[str], *, timeout: float = 120,
                 interrupt_when: Callable[[Env], bool] | None = None) -> Ran:
    """The CLI in a session of its own, as from a terminal; afterwards the
    session must be empty (no child of the run outlives it)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "patchgen", "--cache", str(env.cache), *argv], cwd=ROOT,
        env=env.vars, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        if interrupt_when is not None:
            _interrupt(env, child, interrupt_when, timeout)
        out, err = child.communicate(timeout=timeout)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert _session_empty(child.pid), f"processes of the run are still alive:\n{err}"
    return Ran(child.returncode, out, err)


def _interrupt(env: Env, child: subprocess.Popen[str], when: Callable[[Env], bool],
               timeout: float) -> None:
    """Ctrl-C: SIGINT to the whole foreground group, as a terminal sends it."""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if when(env):
            os.killpg(child.pid, signal.SIGINT)
            return
        time.sleep(0.002)
    raise AssertionError("the moment to interrupt never came")


def _session_empty(sid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _sid(p) == sid]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _sid(proc_dir: Path) -> int | None:
    try:
        stat = (proc_dir / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...": comm may hold spaces.
    return int(stat.rsplit(")", 1)[1].split()[4])


def _no_cache_work(env: Env) -> None:
    """Refused before any work: no tree unpacked, nothing downloaded."""
    assert not (env.cache / "trees").exists()
    assert not (env.cache / "downloads").exists()


# -- the rows ----------------------------------------------------------------------------
def _no_git(env: Env) -> list[str]:
    tree = env.tree("fakelinux")
    empty = env.tmp / "empty-bin"
    empty.mkdir()
    env.vars["PATH"] = str(empty)
    return ["tree", "--tree", str(tree)]


def _a_file_as_tree(env: Env) -> list[str]:
    f = env.tmp / "passwd"
    f.write_text("root:x:0:0::/root:/bin/sh\n")
    return ["tree", "--tree", str(f)]


ROWS: list[Row] = [
    Row("version-empty", "--version '' (an empty version)", lambda env: ["tree", "--version", ""],
        ExitCode.USER_ERROR, "patchgen: error: unknown kernel version ''; known: 6.1, 6.12",
        lambda env: _no_cache_work(env)),
    Row("tree-is-a-file", "--tree names a file", _a_file_as_tree, ExitCode.USER_ERROR,
        "patchgen: error: not a directory: "),
    Row("git-missing", "git is not on PATH", _no_git, ExitCode.INFRA_FAILURE,
        "patchgen: error: required tool not found: git\n"
        "patchgen: hint: install it with: apt-get install git"),
]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    home = Path(os.environ["HOME"])
    return Env(tmp_path, {**os.environ, "TMPDIR": str(tmpdir), "HOME": str(home)})


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault(row: Row, env: Env) -> None:
    argv = row.setup(env)
    ran = run_patchgen(env, argv, timeout=row.timeout, interrupt_when=row.interrupt_when)
    assert ran.returncode == row.code, ran.stderr
    assert row.message in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    left = [p.name for p in (env.tmp / "tmp").iterdir()]
    assert not left, f"left in TMPDIR: {left}"
    row.intact(env)


def test_readme_lists_every_row() -> None:
    """README's "## Faults" table has one line per row, with its exit code."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Faults\n", 1)[1].split("\n## ", 1)[0]
    listed = dict(re.findall(r"^\| `([a-z0-9-]+)` \|.*\| (\d+) \|$", section, re.M))
    assert listed == {r.id: str(int(r.code)) for r in ROWS}
