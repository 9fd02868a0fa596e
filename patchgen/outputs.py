"""Where a command may write: an --output directory is checked before anything is written.

A user's --output may name anything: their kernel tree, a shard's run
directory, a file, a directory of theirs.  Writing there, or replacing it,
would lose what was there.  A command writes only into a directory that
does not exist yet or is empty; ``prep``, which replaces its previous
output whole, also into one that carries its marker (``MARKER``).
"""

from __future__ import annotations

from pathlib import Path

from patchgen.errors import UserError

MARKER = ".patchgen-output"  # in a directory a command may replace: names the command


def check(path: Path, command: str, *, replaceable: bool = False) -> Path:
    """``path`` resolved, or UserError when writing there could lose something."""
    where = path.expanduser().resolve()
    # The first part of the path that exists must be a directory (a new
    # directory under a file cannot be made).
    existing = next((d for d in (where, *where.parents) if d.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"--output {path}: not a directory"
                        + (f" ({existing} is a file)" if existing != where else ""),
                        hint="name a new directory; patchgen creates it")
    if where.is_dir() and any(where.iterdir()) and not (replaceable and made_by(where, command)):
        raise UserError(f"--output {path}: the directory exists and is not empty; patchgen "
                        "writes only into a new or empty directory, so nothing there is lost",
                        hint="name a new directory"
                             + (f" (or one an earlier 'patchgen {command}' wrote)"
                                if replaceable else ""))
    return where


def made_by(directory: Path, command: str) -> bool:
    marker = directory / MARKER
    try:
        return marker.is_file() and marker.read_text().strip() == command
    except OSError:
        return False


def mark(directory: Path, command: str) -> None:
    """Say that ``command`` wrote ``directory`` and may replace it."""
    (directory / MARKER).write_text(command + "\n")
