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

import math
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
    data = read_durations(path.read_text(), str(path))
    return Durations(path, dict(data.get(accel, {})),
                     float(data.get("default", DEFAULT_SECONDS)))


def read_durations(text: str, source: str) -> dict[str, Any]:
    """A durations file's data, checked: ``default`` and each table's
    values are seconds (finite, not negative); UserError naming ``source``."""
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{source}: not a durations file: {exc}") from None
    for key, value in data.items():
        if isinstance(value, dict):
            for unit, seconds in value.items():
                _seconds(seconds, f"{source}: [{key}] {unit}")
        elif key == "default":
            _seconds(value, f"{source}: default")
        else:
            raise UserError(f"{source}: {key} = {value!r}: a durations file has 'default' "
                            "and one table per accelerator")
    return data


# More than a unit of a test run can take: the longest test limit is
# well under an hour; a day is a typo or a broken report.
MAX_UNIT_SECONDS = 86400.0


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or not 0 <= value <= MAX_UNIT_SECONDS:
        raise UserError(f"{what} = {value!r}: not a number of seconds (0 to a day)")
    return float(value)


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


def unit_of(result: TestResult, switched: bool) -> str:
    """The unit that produced ``result``, from its name alone (a report that
    does not list its run's units).  Exact: a name with no position and no
    case is one of our scripts that broke off on a tree with the switch
    (where every kselftest has a position), a kselftest on a tree without
    it (where our scripts do not run)."""
    name = result.name
    if result.variant:
        return pair_key(result.variant.rpartition("=")[2], name)
    if name == EQUIV_KEY or name.startswith((EQUIV_KEY + ":", EQUIV_KEY + " [")):
        return EQUIV_KEY
    if ":" in name or switched:
        return SCRIPT_PREFIX + name.partition(":")[0]
    return name


def measured(tests: Iterable[TestResult], keys: Sequence[str] | None = None, *,
             switched: bool = False) -> dict[str, float]:
    """Seconds per unit, as a report shows them (to seed a durations file):
    units from ``keys`` when the run listed them, else from the names."""
    out: dict[str, float] = {}
    for t in tests:
        key = result_key(t, keys) if keys is not None else unit_of(t, switched)
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


@dataclass(frozen=True)
class Measured:
    """One run's seconds per unit, and where they come from (for the file's header)."""

    run: str  # the run directory's name
    command: str
    tree: str
    rev: str
    started: str
    accel: str
    seconds: Mapping[str, float]


def durations_text(old: str | None, runs: Sequence[Measured]) -> str:
    """A durations file: ``old``'s entries, each unit the runs measured
    replaced by the runs' mean; units they did not run keep their value.
    The runs must share one accelerator."""
    accels = {m.accel for m in runs}
    if len(accels) != 1:
        raise ValueError(f"runs of one accelerator only, got {', '.join(sorted(accels))}")
    (accel,) = accels
    for m in runs:
        for unit, seconds in m.seconds.items():
            _seconds(seconds, f"{m.run}: {unit}")
    data = read_durations(old, "the durations file") if old else {}
    tables = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}
    table = tables.setdefault(accel, {})
    keys = sorted({k for m in runs for k in m.seconds})
    for key in keys:
        values = [m.seconds[key] for m in runs if key in m.seconds]
        table[key] = round(sum(values) / len(values), 2)
    lines = [
        "# Seconds each unit of 'patchgen test' took here, for --shard (patchgen/shard.py).",
        "# Written by 'patchgen durations': each unit the runs below measured is",
        "# their mean, summed over its results (retries included); units they",
        "# did not run keep their earlier value; a unit not listed counts as `default`.",
    ]
    for m in runs:
        lines.append(f"# {m.run} ({m.accel}): {m.command}")
        lines.append(f"#   on {m.tree} at {m.rev[:12]}, {m.started}")
    lines += ["", f"default = {_number(float(data.get('default', DEFAULT_SECONDS)))}"]
    for name in sorted(tables):
        lines += ["", f"[{name}]"]
        lines += [f"{_quoted(k)} = {_number(v)}" for k, v in tables[name].items()]
    return "\n".join(lines) + "\n"


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")
