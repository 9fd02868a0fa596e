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


def patchgen(*args: str, timeout: float = 3600,
             check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "patchgen", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, check=check,
                          env=dict(os.environ))
