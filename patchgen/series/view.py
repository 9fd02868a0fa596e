"""An in-memory view of a tree: patches are computed here, one after another.

Each recipe reads the tree as the previous patches left it and records new
contents; nothing touches the disk.  ``--plan`` prints what the view holds;
``generate`` turns each patch's changes into a commit with git plumbing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from patchgen.csrc import CFile, Edit, apply_edits
from patchgen.git import Git


class RecipeError(Exception):
    """The tree does not look the way a recipe needs: names what and where."""


@dataclass
class TreeView:
    root: Path
    _text: dict[str, str] = field(default_factory=dict)
    _parsed: dict[str, tuple[str, CFile]] = field(default_factory=dict)
    _created: set[str] = field(default_factory=set)
    _executable: set[str] = field(default_factory=set)
    _tracked: frozenset[str] | None = None

    def tracked(self, path: str) -> bool:
        """Whether the tree's commit has ``path``.  A file on disk that git
        does not track (one it ignores, say) is not part of the tree."""
        if self._tracked is None:
            out = Git(self.root).run("ls-files", "-z").stdout
            self._tracked = frozenset(p for p in out.split("\0") if p)
        return path in self._tracked

    def exists(self, path: str) -> bool:
        return path in self._text or self.tracked(path)

    def read(self, path: str) -> str:
        if path not in self._text:
            if not self.tracked(path):
                raise RecipeError(f"{path}: not in the tree's commit")
            try:
                self._text[path] = (self.root / path).read_text()
            except OSError as exc:
                raise RecipeError(f"{path}: cannot read ({exc.strerror})") from exc
        return self._text[path]

    def write(self, path: str, text: str, *, executable: bool = False) -> None:
        if not self.exists(path):
            self._created.add(path)
        if executable:
            self._executable.add(path)
        self._text[path] = text

    def is_executable(self, path: str) -> bool:
        """A file a recipe wrote as a program (mode 100755 when committed)."""
        return path in self._executable

    def parse(self, path: str) -> CFile:
        text = self.read(path)
        cached = self._parsed.get(path)
        if cached is None or cached[0] is not text:
            cached = (text, CFile.parse(path, text))
            self._parsed[path] = cached
        return cached[1]

    def edit(self, path: str, edits: Iterable[Edit]) -> None:
        edits = list(edits)
        if edits:
            self.write(path, apply_edits(self.read(path), edits))

    def grep(self, pattern: str, *, word: bool = False) -> list[str]:
        """Files (C sources and headers) that match, in the tree as it is now."""
        args = ["grep", "-l", "-I", "-E"] + (["-w"] if word else []) + ["-e", pattern,
                                                                        "--", "*.c", "*.h"]
        res = Git(self.root).run(*args, check=False)
        on_disk = set(res.stdout.split())
        rx = re.compile(rf"\b{pattern}\b" if word else pattern)
        for path, text in self._text.items():
            if path.endswith((".c", ".h")):
                if rx.search(text):
                    on_disk.add(path)
                else:
                    on_disk.discard(path)
        return sorted(on_disk)

    def snapshot(self) -> dict[str, str]:
        return dict(self._text)


@dataclass(frozen=True)
class FileChange:
    path: str
    old: str | None  # None: a new file
    new: str
    executable: bool = False


def changes_between(before: dict[str, str], view: TreeView) -> list[FileChange]:
    """What a recipe changed, given the view's snapshot from before it ran."""
    out = []
    for path, new in sorted(view.snapshot().items()):
        old = before.get(path)
        if old is None:
            old = (view.root / path).read_text() if view.tracked(path) else None
        if old != new:
            out.append(FileChange(path, old, new, view.is_executable(path)))
    return out
