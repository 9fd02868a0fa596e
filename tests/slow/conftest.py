"""The real tier: a real kernel tree, a real build, a real guest.

Everything here runs patchgen the way users do (``python -m patchgen ...``
as a subprocess) against the Debian 6.1 tree, sharing the cache so that
the build is done once.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


# prep refuses a missing or placeholder git identity, and this machine's
# global one may be either: the real tier brings its own committer.
COMMITTER = {"GIT_COMMITTER_NAME": "Patch Gen", "GIT_COMMITTER_EMAIL": "patchgen@patchgen.dev"}
# ...and generate its own sign-off (the same person).
USER = "Patch Gen <patchgen@patchgen.dev>"


def patchgen(*args: str, timeout: float = 3600, check: bool = False,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patchgen", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, check=check,
                          env={**os.environ, **(env or {})})


@functools.cache
def default_tree() -> dict[str, Any]:
    """The default tree as 'patchgen tree' prepares it (obtained on first use): its
    id and repository, in the cache patchgen uses (PATCHGEN_CACHE, if set)."""
    res = patchgen("tree")
    assert res.returncode == 0, res.stderr[-3000:]
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def tree_git(*args: str) -> str:
    """git in the default tree's repository; its output."""
    return subprocess.run(["git", "-C", default_tree()["repo"], *args], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="session")
def checked_series(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The series generated and checked once for the whole session: the series
    tests read the check, and prep finds it (a run directory of patchgen's) as
    the check of exactly these commits.  Checking the same ten commits again
    would rebuild every patch in every config (eleven minutes on 2 cores)."""
    res = patchgen("generate", "--author", USER)
    assert res.returncode == 0, res.stderr
    out = tmp_path_factory.mktemp("check")
    checked = patchgen("check", "--output", str(out))
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    return res.stdout, out
