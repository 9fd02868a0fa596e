"""Reports of a run: JSON (complete), JUnit XML (for CI) and a terminal summary."""

from __future__ import annotations

import json
import platform
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from patchgen import junit, proc, runfile
from patchgen.progress import StageTiming, format_seconds
from patchgen.results import Change, Outcome, TestResult, failed, split_failed
from patchgen.shard import ShardInfo
from patchgen.vm.bootstages import record_line


@dataclass
class Report(runfile.RunFile):
    """report.json: what 'test' and 'run' did, test by test."""

    FILE = "report.json"

    command: str
    started: str
    metadata: dict[str, Any] = field(default_factory=dict)
    stages: list[StageTiming] = field(default_factory=list)
    build: dict[str, Any] = field(default_factory=dict)
    guest: dict[str, Any] = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    expectations: str | None = None
    error: str | None = None
    shard: ShardInfo | None = None  # a shard's report: which one, its units, all units

    def to_json(self) -> dict[str, Any]:
        counts = Counter(t.outcome.value for t in self.tests)
        regressions, unexplained = split_failed(self.tests)
        return {
            "schema_version": self.SCHEMA_VERSION,
            "command": self.command,
            "started": self.started,
            "metadata": self.metadata,
            "stages": [{"name": s.name, "seconds": round(s.seconds, 2), "ok": s.ok}
                       for s in self.stages],
            "build": self.build,
            "guest": self.guest,
            "expectations": self.expectations,
            "summary": {
                "total": len(self.tests),
                **{o.value: counts.get(o.value, 0) for o in Outcome},
                "regressions": regressions,
                "failed_without_expectation": unexplained,
            },
            "tests": [t.as_dict() for t in self.tests],
            "error": self.error,
            "shard": self.shard.as_dict() if self.shard is not None else None,
        }

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> Self:
        return cls(
            command=runfile.text(d, "command"), started=runfile.text(d, "started"),
            metadata=runfile.table(d, "metadata"),
            stages=[StageTiming(runfile.text(s, "name"), runfile.number(s, "seconds"),
                                runfile.flag(s, "ok")) for s in runfile.items(d, "stages")],
            build=runfile.table(d, "build"), guest=runfile.table(d, "guest"),
            tests=[TestResult.from_dict(t) for t in runfile.items(d, "tests")],
            expectations=runfile.opt_text(d, "expectations"), error=runfile.opt_text(d, "error"),
            shard=ShardInfo.from_dict(d["shard"]) if d.get("shard") is not None else None)


def tool_versions() -> dict[str, str]:
    """Versions of what the run depends on (first line of each --version)."""
    tools = {"gcc": ["gcc", "--version"], "qemu": ["qemu-system-x86_64", "--version"],
             "vng": ["vng", "--version"], "make": ["make", "--version"],
             "ccache": ["ccache", "--version"]}
    out = {}
    for name, argv in tools.items():
        try:
            res = proc.run(argv, check=False, timeout=30)
            lines = (res.stdout or res.stderr).splitlines()
            out[name] = lines[0].strip() if lines else "unknown"
        except Exception as exc:  # a missing tool is reported, not fatal here
            out[name] = f"unavailable ({exc})"
    out["python"] = platform.python_version()
    out["host"] = f"{platform.node()} {platform.release()} {platform.machine()}"
    return out


def save_run(report: Report, run_dir: Path) -> None:
    """What a test run (or a merge of shards) leaves: junit.xml,
    metadata.json and, last, report.json."""
    write_junit(report, run_dir / "junit.xml")
    (run_dir / "metadata.json").write_text(json.dumps(report.metadata, indent=2) + "\n")
    write_json(report, run_dir / "report.json")


def write_json(report: Report, path: Path) -> None:
    """Whole or not at all: an interrupted write leaves the old file."""
    runfile.write(path, report.to_json())


def junit_tree(report: Report, suite: str = "netfilter-kselftests") -> ET.ElementTree:
    tests = report.tests
    counts = Counter(t.outcome for t in tests)
    root, ts = junit.suite(suite, {
        "tests": str(len(tests)),
        "failures": str(counts[Outcome.FAIL] + counts[Outcome.TIMEOUT]),
        "errors": str(counts[Outcome.CRASH]),
        "skipped": str(counts[Outcome.SKIP]),
        "time": f"{sum(t.seconds for t in tests):.2f}",
        "timestamp": report.started,
    }, [(key, report.metadata[key]) for key in ("tree", "version", "accel", "config_digest")
        if key in report.metadata])
    for t in tests:
        _junit_case(ts, suite, t)
    return junit.finish(root)


def _junit_case(parent: ET.Element, suite: str, t: TestResult) -> None:
    case = ET.SubElement(parent, "testcase", {"classname": suite, "name": t.label,
                                              "time": f"{t.seconds:.2f}"})
    last = t.attempts[-1]
    message = f"{t.outcome.value}: {last.detail}".strip(": ")
    if t.outcome in (Outcome.FAIL, Outcome.TIMEOUT):
        ET.SubElement(case, "failure", {"type": t.outcome.value, "message": message}).text = \
            t.failing_output
    elif t.outcome is Outcome.CRASH:
        ET.SubElement(case, "error", {"type": "crash", "message": message}).text = \
            "\n".join([*last.console, "", last.output])
    elif t.outcome is Outcome.SKIP:
        ET.SubElement(case, "skipped", {"message": last.detail or "skipped"})
    elif t.outcome is Outcome.FLAKY:
        # Surefire's convention: a passing case that failed first.
        first = t.attempts[0]
        ET.SubElement(case, "flakyFailure", {"type": first.outcome.value,
                                             "message": first.detail}).text = first.output
    if t.expected is not None:
        junit.add_properties(case, [("expected", t.expected.value),
                                    ("change", t.change.value)])


def write_junit(report: Report, path: Path) -> None:
    junit.write(junit_tree(report), path)


def summary(report: Report, switch_name: str) -> str:
    """The run in a few lines; ``switch_name``: the series' sysctl, by its last part."""
    lines = []
    meta = report.metadata
    lines.append(f"patchgen: {meta.get('tree', '?')} ({meta.get('origin', '')}), "
                 f"profile {meta.get('profile', '?')}, {meta.get('accel', '?')}")
    lines += _header(report, switch_name)
    if report.tests:
        lines.append("")
        lines.append(f"  {'test':<50} {'result':<8} {'time':>8}  vs expected")
        for t in report.tests:
            note = t.change.value
            if t.change is not Change.SAME and t.expected is not None:
                note += f" (expected {t.expected.value})"
            detail = t.attempts[-1].detail
            if t.outcome.bad and detail:
                note += f" - {detail}"
            if t.outcome.bad and t.why_expected:
                note += f" [{t.why_expected}]"
            lines.append(f"  {t.label:<50} {t.outcome.value:<8} {t.seconds:7.1f}s  {note}")
        counts = Counter(t.outcome.value for t in report.tests)
        lines.append("")
        lines.append("  " + ", ".join(f"{counts[o.value]} {o.value}" for o in Outcome
                                      if counts[o.value]) + f" (of {len(report.tests)})")
        regressions, unexplained = split_failed(report.tests)
        lines.append("  regressions: " + (", ".join(regressions) or "none"))
        if unexplained:
            # A tree without an expected-results file (say one patchgen has
            # not seen) has nothing to regress from: say so, not "regression".
            lines.append("  failed with no expectation to compare with: "
                         + ", ".join(unexplained))
        lines += _last_words(failed(report.tests))
    lines.append("")
    if guests := guests_line(report.guest):
        lines.append(guests)
    lines.append("  stages: " + ", ".join(f"{s.name} {format_seconds(s.seconds)}"
                                         + ("" if s.ok else " (failed)") for s in report.stages))
    if report.error:
        lines.append(f"  error: {report.error}")
    lines.append(f"  reproduce: {report.command}")
    return "\n".join(lines)


LAST_WORDS = 4  # lines of each failure's output the summary shows


def _last_words(bad: list[TestResult]) -> list[str]:
    """The last lines each failure printed (its diagnostics, or the console
    of a crash): a CI log that keeps only the summary still says why."""
    lines = []
    for t in bad:
        first_bad = next((a for a in t.attempts if a.outcome.bad), t.attempts[-1])
        said = [line for line in first_bad.output.splitlines() if line.strip()]
        said = said or list(first_bad.console)
        if said:
            lines.append(f"    {t.label}:")
            lines += [f"      {line}" for line in said[-LAST_WORDS:]]
    if lines:
        lines.insert(0, "  what failed printed last (all of it: report.json, junit.xml):")
    return lines


def _header(report: Report, switch_name: str) -> list[str]:
    """The lines under the first: the shard, the merge, the switch, the boot."""
    lines = []
    meta = report.metadata
    if report.shard is not None:
        lines.append(f"  shard {report.shard.shard}: {len(report.shard.keys)} of "
                     f"{len(report.shard.all_keys)} units ({', '.join(report.shard.keys)})")
    merged = meta.get("merged")
    if merged:
        lines.append(f"  merged from {len(merged)} shards: "
                     + ", ".join(f"{m['shard']} {m['run_dir']}" for m in merged))
    first_boot = (report.guest.get("boots") or [{}])[0]
    if "switch_default" in first_boot:
        lines.append(f"  switch default in the guest: {switch_name}={first_boot['switch_default']}"
                     f" (spectre_v2: {first_boot.get('spectre_v2', 'unknown')})")
    if "stages" in first_boot:
        lines.append(f"  boot to SSH {first_boot['stages']['total']:.1f}s: "
                     + record_line(first_boot["stages"]))
    return lines


def guests_line(guest: Mapping[str, Any]) -> str:
    """How many guests ran at once, how busy each was, and the wall time saved
    ("" for a report without lanes: older, or interrupted)."""
    lanes = guest.get("lanes")
    if not lanes:
        return ""
    jobs = guest.get("jobs", len(lanes))
    busy = " + ".join(format_seconds(lane["busy_seconds"]) for lane in lanes)
    if jobs == 1:
        return f"  guests: 1 at a time, busy {busy}"
    return (f"  guests: {jobs} at once, busy {busy}; saved "
            f"{format_seconds(guest.get('saved_seconds', 0.0))} of wall time")
