"""Equivalence of the two dispatch paths, case by case, with real observables.

``selftests/equiv/equiv.sh`` builds namespaces, sends fixed traffic through
one kind of hook user per case and prints what it observed (packets
delivered, counters, conntrack entries, errno seen by senders, queue
events).  It runs once per position of the runtime switch in one boot;
the observables must be identical, and identical to those recorded on the
unpatched kernel (the baseline) where one exists.  A case whose
observables are empty, or all zero, fails too: comparing two empty
outputs proves nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from patchgen import ktap
from patchgen.results import Attempt, Outcome, TestResult

_OBS = re.compile(r"^OBS ([A-Za-z0-9_.-]+)=(.*)$")
Observables = dict[str, dict[str, str]]  # case -> key -> value


@dataclass(frozen=True)
class EquivPlan:
    script: Path
    timeout: int = 1800
    baseline: Path | None = None  # observables of the unpatched kernel (read, or written)
    record: bool = False  # on the unpatched kernel: write the baseline instead


def parse(stdout: str) -> tuple[Observables, dict[str, str]]:
    """(observables per case, cases whose setup failed -> reason)."""
    doc = ktap.parse(stdout.splitlines())
    obs: Observables = {}
    failed: dict[str, str] = {}
    for case in doc.subtests:
        values: dict[str, str] = {}
        for line in case.log:
            text = line[2:] if line.startswith("# ") else line
            m = _OBS.match(text)
            if m:
                values[m.group(1)] = m.group(2).strip()
        obs[case.name] = values
        if case.status is not ktap.TestStatus.SUCCESS:
            failed[case.name] = case.directive or "setup failed"
    return obs, failed


def meaningful(values: Mapping[str, str]) -> bool:
    """At least one observable that is not empty and not zero."""
    return any(v not in ("", "0") for v in values.values())


def compare(case: str, columns: Mapping[str, Observables]) -> tuple[Outcome, str]:
    """One case across columns (variant or "unpatched" -> observables)."""
    present = {name: obs[case] for name, obs in columns.items() if case in obs}
    keys = sorted({k for values in present.values() for k in values})
    rows = []
    differ = False
    for k in keys:
        cells = [present[c].get(k, "(missing)") for c in present]
        same = len(set(cells)) == 1
        differ |= not same
        rows.append(("  " if same else "≠ ") + f"{k}: " + " | ".join(cells))
    header = "    columns: " + " | ".join(present)
    table = "\n".join([header, *rows])
    empty = [name for name, values in present.items() if not meaningful(values)]
    if differ:
        # Say which column went blank: that is where to look first.
        why = "observables differ" + (f"; nothing observed with {', '.join(empty)}"
                                      if empty else "")
        return Outcome.FAIL, why + "\n" + table
    if empty:
        return Outcome.FAIL, "no meaningful observables (empty or all zero)\n" + table
    return Outcome.PASS, table


def results(columns: Mapping[str, Observables], failed: Mapping[str, str], seconds: float,
            cases: Sequence[str]) -> list[TestResult]:
    out = []
    each = seconds / max(len(cases), 1)
    for case in cases:
        if case in failed:
            outcome, text = Outcome.FAIL, f"case setup failed: {failed[case]}"
        else:
            outcome, text = compare(case, columns)
        detail = text.split("\n", 1)[0] if outcome is not Outcome.PASS else ""
        out.append(TestResult(f"equiv:{case}", outcome,
                              (Attempt(outcome, each, 0, text, detail),)))
    return out


def load_baseline(path: Path | None) -> Observables | None:
    if path is None or not path.exists():
        return None
    data: Observables = json.loads(path.read_text())
    return data


def save_baseline(path: Path, obs: Observables) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obs, indent=2, sort_keys=True) + "\n")


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def seconds(self) -> float:
        return time.monotonic() - self.start
