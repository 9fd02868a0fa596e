"""Disk space: a step that needs a lot says how much, and where, before it runs out.

A full disk otherwise shows up as a tool's raw "No space left on device",
with no word of how much the step needed or which file system it wrote to.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from patchgen.errors import InfraError

HINT = "free some space there, or put the cache on a larger disk (--cache DIR or PATCHGEN_CACHE)"
ENOSPC_TEXT = "No space left on device"


def free_bytes(where: Path) -> int:
    """Free space of the file system ``where`` is (or will be) on."""
    path = where
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def human(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def require(where: Path, need: int, step: str) -> None:
    """Refuse to start ``step`` if ``where`` has less than ``need`` bytes free."""
    free = free_bytes(where)
    if free < need:
        raise InfraError(f"{step} needs about {human(need)} in {where}; {human(free)} free",
                         hint=HINT)


def is_exhausted(text: str) -> bool:
    return ENOSPC_TEXT in text


def is_enospc(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def exhausted(where: Path, need: int | None, step: str) -> InfraError:
    """The error for a step that ran out of space after all."""
    how_much = f" needs about {human(need)}" if need else " ran out of space"
    return InfraError(f"no space left on device: {step}{how_much} in {where} "
                      f"({human(free_bytes(where))} free now)", hint=HINT)
