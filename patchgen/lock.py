"""One patchgen run per tree at a time.

Two runs sharing a worktree and build directory would check out commits
under each other's feet and race in make.  A second run on the same tree
waits for the first and says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from patchgen.progress import Progress
from patchgen.settings import Settings


@contextlib.contextmanager
def tree_lock(settings: Settings, tree_id: str, progress: Progress) -> Iterator[None]:
    path = settings.cache / "locks" / f"{tree_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "?"
            progress.info(f"waiting for another patchgen run on {tree_id} (pid {holder})")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
