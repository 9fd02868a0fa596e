"""A test run split across machines: ``--shard i/N``.

The work of ``patchgen test`` is a list of units, each with a stable key:
a kselftest at one switch position (``1/nft_meta.sh``; on a tree without
the switch just ``nft_meta.sh``), one of our guest scripts
(``script:nf_hook_bpf.sh``) and the equivalence cases (``equiv``).  The
units are dealt to N shards by measured duration, longest first, each to
the shard with the least work so far (ties by key), so that every shard of
a run, on whatever machine, computes the same split.  The durations are
data: ``selftests/durations/<series>.toml``, per accelerator, seeded from
real reports; a unit without a measurement counts as the file's default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchgen import runfile
from patchgen.errors import UserError
from patchgen.results import TestResult

DEFAULT_SECONDS = 60.0  # a unit nobody measured, when the file says nothing
EQUIV_KEY = "equiv"
SCRIPT_PREFIX = "script:"


@dataclass(frozen=True, order=True)
class Shard:
    index: int  # from 1
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(text: str) -> Shard:
    """``i/N`` with 1 <= i <= N."""
    m = re.fullmatch(r"\s*([0-9]+)/([0-9]+)\s*", text)
    if m is None:
        raise UserError(f"--shard takes i/N (shard i of N, from 1), got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1:
        raise UserError(f"shard {index}/{count}: N must be 1 or more")
    if index < 1:
        raise UserError(f"shard {index}/{count}: i counts from 1")
    if index > count:
        raise UserError(f"shard {index}/{count}: there are only {count} shards")
    return Shard(index, count)


def pair_key(position: str, test: str) -> str:
    """A kselftest's unit at one position of the switch ("" on a tree without
    it): the key kselftest.work_units() gives it."""
    return f"{position}/{test}" if position else test


@dataclass(frozen=True)
class Durations:
    source: Path | None
    seconds: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_SECONDS

    def get(self, key: str) -> float:
        return self.seconds.get(key, self.default)


def load_durations(path: Path, accel: str) -> Durations:
    """``selftests/durations/<series>.toml``: ``default``, then one table per accelerator."""
    if not path.exists():
        return Durations(None)
    data = tomllib.loads(path.read_text())
    table = data.get(accel, {})
    return Durations(path, {k: float(v) for k, v in table.items()},
                     float(data.get("default", DEFAULT_SECONDS)))


def assign(keys: Sequence[str], durations: Durations, n: int) -> list[list[str]]:
    """``keys`` dealt to ``n`` shards: longest first to the least loaded shard
    (ties: the lower shard), equal durations by key; each shard keeps the
    order of ``keys``.  Same input, same split."""
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"work key given twice: {', '.join(twice)}")
    load = [0.0] * n
    chosen: dict[str, int] = {}
    for key in sorted(keys, key=lambda k: (-durations.get(k), k)):
        i = min(range(n), key=lambda j: (load[j], j))
        chosen[key] = i
        load[i] += durations.get(key)
    return [[k for k in keys if chosen[k] == i] for i in range(n)]


def result_key(result: TestResult, keys: Sequence[str]) -> str:
    """The unit of ``keys`` that produced ``result``."""
    name = result.name
    if result.variant:
        key = pair_key(result.variant.rpartition("=")[2], name)
    elif name in keys:
        key = name
    elif name == EQUIV_KEY or name.startswith((EQUIV_KEY + ":", EQUIV_KEY + " [")):
        key = EQUIV_KEY
    else:
        key = SCRIPT_PREFIX + name.partition(":")[0]
    if key not in keys:
        raise ValueError(f"result {result.label} belongs to no unit of this run")
    return key


def measured(tests: Iterable[TestResult], keys: Sequence[str]) -> dict[str, float]:
    """Seconds per unit, as a report shows them (to seed a durations file)."""
    out: dict[str, float] = {}
    for t in tests:
        key = result_key(t, keys)
        out[key] = round(out.get(key, 0.0) + t.seconds, 2)
    return out


@dataclass(frozen=True)
class ShardInfo:
    """What a shard's report says of the split: which shard, its units, all units."""

    shard: Shard
    keys: tuple[str, ...]
    all_keys: tuple[str, ...]
    durations: str | None = None  # the file the split was computed from

    def as_dict(self) -> dict[str, Any]:
        return {"shard": str(self.shard), "keys": list(self.keys),
                "all_keys": list(self.all_keys), "durations": self.durations}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ShardInfo:
        try:
            which = parse(runfile.text(d, "shard"))
        except UserError as exc:
            raise ValueError(exc.message) from None
        return cls(which, tuple(runfile.texts(d, "keys")), tuple(runfile.texts(d, "all_keys")),
                   runfile.opt_text(d, "durations"))
