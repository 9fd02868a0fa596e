"""Run files: the JSON a command writes (report.json, check.json, bench.json)
and later commands read back, typed.

Each result class carries its ``SCHEMA_VERSION``, writes it as
``"schema_version"`` (``to_json``) and reads it back (``from_json``); the
readers (prep, the HTML view, ``ci/pipeline``) take the dataclasses, so the
key names live in one place.  A file written before the field existed is
version 1: the format did not change otherwise.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from patchgen.errors import UserError

T = TypeVar("T")

# What a reader may raise on a file of the right version but the wrong shape
# (public: commands that combine run files check them the same way).
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class RunFileError(UserError):
    """A run file patchgen cannot read: not JSON, malformed, or from a newer patchgen."""


class RunFile:
    """A result written to a run file and read back typed: the subclass says
    its file, its version and how to read one (``_read``)."""

    SCHEMA_VERSION: ClassVar[int] = 1
    FILE: ClassVar[str]

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> Self:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: Any, source: str | None = None) -> Self:
        """What to_json() wrote (derived figures are not read); RunFileError otherwise."""
        return parse(data, cls._read, cls.SCHEMA_VERSION, source or cls.FILE)

    @classmethod
    def load(cls, path: Path) -> Self:
        return load(path, cls._read, cls.SCHEMA_VERSION)


def parse(data: Any, read: Callable[[Mapping[str, Any]], T], current: int, source: str) -> T:
    """``read`` applied to decoded JSON, after its schema_version is checked.

    ``source`` names the file (or whatever the data came from) in the error.
    """
    if not isinstance(data, Mapping):
        raise RunFileError(f"{source}: not a run file (a JSON object was expected)")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunFileError(f"{source}: schema_version {version!r} is not a version number")
    if version > current:
        raise RunFileError(f"{source}: schema_version {version} is newer than this patchgen "
                           f"reads ({current})",
                           hint="read it with the patchgen that wrote it, or update patchgen")
    try:
        return read(data)
    except MALFORMED as exc:
        raise RunFileError(f"{source}: malformed run file: {_describe(exc)}") from None


def load(path: Path, read: Callable[[Mapping[str, Any]], T], current: int) -> T:
    """A run file from disk; every way it can be unreadable is a RunFileError naming it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RunFileError(f"{path}: not a run file (not UTF-8 text)") from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _KeyTwice as exc:
        raise RunFileError(f"{path}: malformed run file: key {exc.key!r} given twice") from None
    except ValueError as exc:
        raise RunFileError(f"{path}: not JSON: {exc}") from None
    except RecursionError:  # the decoder recurses once per [ or {
        raise RunFileError(f"{path}: not JSON: nested too deeply to read") from None
    return parse(data, read, current, str(path))


class _KeyTwice(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of a run file; json.loads alone keeps the last of a key given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _KeyTwice(key)
        out[key] = value
    return out


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: an interrupt or a full
    disk leaves the old file or the new one, never half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write(path: Path, data: Mapping[str, Any]) -> None:
    """A run file (``to_json()``), replaced all at once (write_text)."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r}" if exc.args else "a key is missing"
    return str(exc) or type(exc).__name__


# -- typed access to decoded JSON ----------------------------------------------
def text(d: Mapping[str, Any], key: str) -> str:
    value = d[key]
    if not isinstance(value, str):
        raise TypeError(f"{key!r} is not a string")
    return value


def opt_text(d: Mapping[str, Any], key: str) -> str | None:
    return None if d.get(key) is None else text(d, key)


def number(d: Mapping[str, Any], key: str) -> float:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key!r} is not a number")
    if not math.isfinite(value):  # json.loads reads NaN and Infinity
        raise ValueError(f"{key!r} is {value}, not a finite number")
    return float(value)


def integer(d: Mapping[str, Any], key: str) -> int:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} is not an integer")
    return value


def opt_integer(d: Mapping[str, Any], key: str) -> int | None:
    return None if d.get(key) is None else integer(d, key)


def flag(d: Mapping[str, Any], key: str) -> bool:
    value = d[key]
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} is not true or false")
    return value


def table(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = d[key]
    if not isinstance(value, Mapping):
        raise TypeError(f"{key!r} is not an object")
    return dict(value)


def items(d: Mapping[str, Any], key: str) -> list[Any]:
    value = d[key]
    if not isinstance(value, list):
        raise TypeError(f"{key!r} is not a list")
    return value


def texts(d: Mapping[str, Any], key: str) -> list[str]:
    values = items(d, key)
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{key!r} is not a list of strings")
    return values
