"""The real tier: a real kernel tree, a real build, a real guest.

Everything here runs patchgen the way users do (``python -m patchgen ...``
as a subprocess) against the Debian 6.1 tree, sharing the cache so that
the build is done once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
