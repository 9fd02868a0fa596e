"""'patchgen bench': the cost of both dispatch paths, measured in one boot.

Two measurements, both alternating the runtime switch (A B A B ...):

* forwarding: pktgen through a router namespace in the RFC's four
  configurations (no rules, one filter rule, conntrack, flowtable);
* nf_hook() itself: a small test module times the call with 1, 3, 5, 10
  and 20 hooks registered.

Each is repeated with retpolines on (the default on a CPU that has the
spectre_v2 bug, as QEMU's models do) and off (``spectre_v2=off``), one boot
each.  Results: medians with a bootstrap 95% confidence interval and the
ratio of the two paths, as a table, JSON and a PNG plot.  Under TCG these
are emulation figures, not hardware ones; with KVM the same command gives
real ones.
"""

from __future__ import annotations

import random
import re
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

from patchgen import build as kbuild
from patchgen import junit, runfile
from patchgen.errors import BuildFailure, GuestFailure, UserError
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.vm.accel import Accel
from patchgen.vm.guest import Guest

CONFIGS = ("none", "filter", "ct", "flowtable")
HOOK_COUNTS = (1, 3, 5, 10, 20, 32, 64)
# The module's MAX_BENCH_HOOKS (selftests/bench/nf_hook_bench.c): insmod
# refuses more, after the build and the boot.
MAX_HOOKS = 64
MITIGATIONS = {"retpoline": (), "off": ("spectre_v2=off",)}
# How a bench measures: "icount" (TCG with QEMU's instruction counter: the
# guest's clock counts executed instructions, so figures are instruction
# counts that two runs reproduce) or "wall" (real time under KVM; under TCG
# without icount, emulation time, which says little about hardware).
MODES = ("icount", "wall")
# The nf_hook_base dispatcher turns the call into at most this many
# programs into direct calls (BPF_DISPATCHER_MAX); the module's @fill makes
# more programs than that exist to show what happens beyond.
DISPATCHER_MAX = 48
OVERFLOW_FILL = 64
# Fewer paired rounds than this give a bootstrap interval that is little
# more than the range of the data: it is not printed.
MIN_CI_ROUNDS = 6
_FWD = re.compile(r"^BENCH config=(\w+) switch=([01]) rep=(\d+) packets=(\d+) pps=(\d+)"
                  r"(?: ns=(\d+))?$", re.M)
_MICRO = re.compile(r"nf_hook_bench: hooks=(\d+) iters=(\d+) passed=(\d+) total_ns=(\d+)"
                    r"(?: fill=(\d+))?")
_CALIB = re.compile(r"nf_hook_bench: calib iters=(\d+) loop_ns=(\d+) direct_ns=(\d+) "
                    r"indirect_ns=(\d+)")
_CTL = re.compile(r"nf_hook_bench: ctl hooks=(\d+) rounds=(\d+) reg_ns=(\d+) unreg_ns=(\d+) "
                  r"gp=(\d+)(?: idle_ns=(\d+) cpus=(\d+))?")
_CTL_SCRIPT = re.compile(r"^CTL ((?:\w+=\S+ ?)+)$", re.M)

# kind: (title, unit, higher is better)
KINDS = {
    "fwd_pps": ("forwarding", "pps", True),
    "insns_per_packet": ("forwarding", "insns/packet", False),
    "ns_per_call": ("nf_hook() call", "ns/call", False),
    "insns_per_call": ("nf_hook() call", "insns/call", False),
}


@dataclass(frozen=True)
class Stat:
    median: float
    lo: float | None
    hi: float | None
    n: int
    interval: str = "95% CI, bootstrap"

    def text(self, digits: int = 1) -> str:
        if self.lo is None or self.hi is None:
            return f"{self.median:,.{digits}f} (no interval: {self.n} rounds are too few)"
        return (f"{self.median:,.{digits}f} [{self.lo:,.{digits}f}, "
                f"{self.hi:,.{digits}f}]")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stat:
        lo, hi = (None if d.get(k) is None else runfile.number(d, k) for k in ("lo", "hi"))
        return cls(runfile.number(d, "median"), lo, hi, runfile.integer(d, "n"),
                   runfile.text(d, "interval"))


@dataclass(frozen=True)
class Comparison:
    """One measurement point: the generated programs (bpf) against nf_hook_slow() (slow)."""

    kind: str  # a key of KINDS
    mitigation: str
    point: str  # ruleset name or hook count
    bpf: Stat
    slow: Stat
    ratio: Stat  # bpf / slow

    @property
    def gain_percent(self) -> float:
        """Positive when the programs are better, in the measure's own direction."""
        r = self.ratio.median
        return (r - 1) * 100 if KINDS[self.kind][2] else (1 / r - 1) * 100

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        """What BenchResult.to_json() wrote; gain_percent and ratio_text are not read."""
        kind = runfile.text(d, "kind")
        if kind not in KINDS:
            raise ValueError(f"unknown measure {kind!r}")
        return cls(kind, runfile.text(d, "mitigation"), runfile.text(d, "point"),
                   *(Stat.from_dict(runfile.table(d, k)) for k in ("bpf", "slow", "ratio")))


@dataclass
class BenchResult(runfile.RunFile):
    """bench.json.  ``raw`` (the guest's output and the rounds) is kept as JSON
    has it: read back, its integer keys are strings."""

    FILE = "bench.json"

    accel: str
    comparisons: list[Comparison] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    # Points asked for that gave no usable measurement (kind, mitigation, point).
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    mode: str = "wall"
    # Per mitigation: what one call through a pointer costs over a direct
    # call, measured in the same boot (instructions, or ns in wall mode).
    calibration: dict[str, float] = field(default_factory=dict)
    # Control plane: one dict per measurement (see parse_ctl, parse_ctl_script).
    control: list[dict[str, Any]] = field(default_factory=list)
    model: CostModel | None = None

    @property
    def rfc(self) -> list[str]:
        return rfc_verdict(self)

    @property
    def table(self) -> str:
        """The whole text report (bench.json's "table")."""
        return format_table(self, self.model or CostModel())

    def to_json(self) -> dict[str, Any]:
        model = self.model or CostModel()
        return {"schema_version": self.SCHEMA_VERSION, "accel": self.accel, "mode": self.mode,
                "metadata": self.metadata,
                "comparisons": [{**asdict(c), "gain_percent": round(c.gain_percent, 2),
                                 "ratio_text": c.ratio.text(3)} for c in self.comparisons],
                "missing": [list(m) for m in self.missing], "rfc": rfc_verdict(self),
                "calibration": self.calibration,
                "indirect_calls": [asdict(r) for r in indirect_calls(self)],
                "cost_model": {"cpi": model.cpi, "penalty": model.penalty,
                               "rows": [asdict(r) for r in model_rows(self, model)]},
                "control": self.control, "table": format_table(self, model), "raw": self.raw}

    @classmethod
    def _read(cls, d: Mapping[str, Any]) -> Self:
        """A model left at None was written as the default CostModel, and reads back as one."""
        cost = runfile.table(d, "cost_model") if "cost_model" in d else None
        return cls(
            runfile.text(d, "accel"),
            [Comparison.from_dict(c) for c in runfile.items(d, "comparisons")],
            runfile.table(d, "raw") if "raw" in d else {},
            _missing(d),
            runfile.table(d, "metadata"),
            runfile.text(d, "mode") if "mode" in d else "wall",
            {k: float(v) for k, v in runfile.table(d, "calibration").items()}
            if "calibration" in d else {},
            runfile.items(d, "control") if "control" in d else [],
            CostModel(runfile.number(cost, "cpi"), runfile.number(cost, "penalty"))
            if cost is not None else None)


def _missing(d: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for m in runfile.items(d, "missing"):
        if not (isinstance(m, list) and len(m) == 3 and all(isinstance(x, str) for x in m)):
            raise ValueError("'missing' is not a list of [kind, mitigation, point]")
        out.append((m[0], m[1], m[2]))
    return out


def bootstrap_median(values: Sequence[float], rounds: int = 2000, seed: int = 1) -> Stat:
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return Stat(statistics.median(values), meds[int(0.025 * rounds)], meds[int(0.975 * rounds)],
                len(values))


def bootstrap_ratio(a: Sequence[float], b: Sequence[float], rounds: int = 2000,
                    seed: int = 2) -> Stat:
    rng = random.Random(seed)
    ratios = sorted(statistics.median(rng.choices(a, k=len(a))) /
                    statistics.median(rng.choices(b, k=len(b))) for _ in range(rounds))
    return Stat(statistics.median(a) / statistics.median(b), ratios[int(0.025 * rounds)],
                ratios[int(0.975 * rounds)], min(len(a), len(b)))


def paired(bpf: Sequence[float], slow: Sequence[float], icount: bool, rounds: int = 2000,
           seed: int = 3) -> tuple[Stat, Stat, Stat]:
    """Statistics of rounds that were measured in pairs (switch 1, then 0).

    icount: the spread (min-max) of the rounds, since the figures are
    counts that repeat; the ratio's spread is that of the per-round ratios.
    Otherwise a bootstrap that resamples whole rounds, so that what drifted
    between rounds moves both sides alike, as it did when measured; with
    fewer than MIN_CI_ROUNDS rounds no interval at all.
    """
    n = min(len(bpf), len(slow))
    b, s = list(bpf[:n]), list(slow[:n])
    ratio = statistics.median(b) / statistics.median(s)
    if icount:
        per_round = [x / y for x, y in zip(b, s, strict=True)]
        spread = "spread (min-max)"
        return (Stat(statistics.median(b), min(b), max(b), n, spread),
                Stat(statistics.median(s), min(s), max(s), n, spread),
                Stat(ratio, min(per_round), max(per_round), n, spread))
    if n < MIN_CI_ROUNDS:
        none = f"none: {n} rounds are too few for an interval ({MIN_CI_ROUNDS} needed)"
        return (Stat(statistics.median(b), None, None, n, none),
                Stat(statistics.median(s), None, None, n, none), Stat(ratio, None, None, n, none))
    rng = random.Random(seed)
    samples = []
    for _ in range(rounds):
        idx = rng.choices(range(n), k=n)
        mb = statistics.median(b[i] for i in idx)
        ms = statistics.median(s[i] for i in idx)
        samples.append((mb, ms, mb / ms))
    lo, hi = int(0.025 * rounds), int(0.975 * rounds)
    ci = "95% CI, paired bootstrap by round"
    cols = [sorted(col) for col in zip(*samples, strict=True)]
    return tuple(Stat(med, col[lo], col[hi], n, ci)  # type: ignore[return-value]
                 for med, col in zip((statistics.median(b), statistics.median(s), ratio),
                                     cols, strict=True))


def compare(kind: str, mitigation: str, point: str, bpf: Sequence[float],
            slow: Sequence[float], icount: bool = False) -> Comparison:
    b, s, r = paired(bpf, slow, icount)
    return Comparison(kind, mitigation, point, b, s, r)


def parse_fwd(text: str) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for config, switch, _, packets, pps, _ns in _FWD.findall(text):
        if int(packets) > 0:
            out.setdefault((config, switch), []).append(float(pps))
    return out


def parse_fwd_insns(text: str) -> dict[tuple[str, str], list[float]]:
    """Instructions per forwarded packet: pktgen's own elapsed time (which,
    under icount, counts instructions) over the packets forwarded."""
    out: dict[tuple[str, str], list[float]] = {}
    for config, switch, _, packets, _pps, ns in _FWD.findall(text):
        if int(packets) > 0 and ns and int(ns) > 0:
            out.setdefault((config, switch), []).append(int(ns) / int(packets))
    return out


def spectre_v2(fwd_output: str) -> str:
    """The guest kernel's own word on the mitigation in force (fwd_bench.sh prints it)."""
    m = re.search(r"^# spectre_v2: (.*)$", fwd_output, re.M)
    return m.group(1).strip() if m else "unknown"


def fwd_notes(fwd_output: str) -> list[str]:
    """What fwd_bench.sh says about its rulesets (rule counters, flowtable offload)."""
    return [m.group(1) for m in re.finditer(r"^# ((?!spectre_v2:).*)$", fwd_output, re.M)]


def parse_micro(lines: Sequence[str]) -> list[tuple[int, float]]:
    """(hooks, ns per call) for each module run whose calls all passed."""
    out = []
    for line in lines:
        m = _MICRO.search(line)
        if m and int(m.group(3)) == int(m.group(2)):
            out.append((int(m.group(1)), int(m.group(4)) / int(m.group(2))))
    return out


@dataclass(frozen=True)
class ModuleRun:
    """One insmod of nf_hook_bench: the calibration and the measurement."""

    hooks: int
    iters: int
    total_ns: int
    fill: int
    loop_ns: int
    direct_ns: int
    indirect_ns: int

    def per_call(self, icount: bool) -> float:
        """Per nf_hook() call; counted instructions less the empty loop around it."""
        total = self.total_ns - self.loop_ns if icount else self.total_ns
        return total / self.iters

    @property
    def thunk(self) -> float:
        """An indirect call's cost over a direct one, per call."""
        return (self.indirect_ns - self.direct_ns) / self.iters


def parse_module_run(lines: Sequence[str]) -> ModuleRun | None:
    """The last run in a kernel log, if all its calls passed and it was calibrated."""
    calib = micro = None
    for line in lines:
        calib = _CALIB.search(line) or calib
        micro = _MICRO.search(line) or micro
    if micro is None or calib is None or micro.group(2) != micro.group(3):
        return None
    return ModuleRun(int(micro.group(1)), int(micro.group(2)), int(micro.group(4)),
                     int(micro.group(5) or 0), int(calib.group(2)), int(calib.group(3)),
                     int(calib.group(4)))


def thunk_cost(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class CtlRun:
    hooks: int
    rounds: int
    register_ns: float  # per registration
    unregister_ns: float
    grace_periods: float  # RCU grace periods (expedited too) per register + unregister
    # Share of the CPUs' time spent idle meanwhile (tick-sampled): waiting,
    # not working.  Under icount idle time is skipped, not counted.
    idle_share: float | None = None


def parse_ctl(lines: Sequence[str]) -> CtlRun | None:
    found = None
    for line in lines:
        found = _CTL.search(line) or found
    if found is None or int(found.group(2)) == 0:
        return None
    hooks, rounds, reg, unreg, gp = (int(g) for g in found.groups()[:5])
    idle = None
    if found.group(6) is not None and reg + unreg > 0:
        idle = int(found.group(6)) / ((reg + unreg) * int(found.group(7)))
    return CtlRun(hooks, rounds, reg / rounds, unreg / rounds, gp / rounds, idle)


def parse_ctl_script(text: str) -> list[dict[str, Any]]:
    """ctl_bench.sh's "CTL key=value ..." lines (numbers as int)."""
    rows = []
    for m in _CTL_SCRIPT.finditer(text):
        row: dict[str, Any] = {}
        for pair in m.group(1).split():
            key, value = pair.split("=", 1)
            row[key] = int(value) if value.isdigit() else value
        rows.append(row)
    return rows


# -- what the counts mean ----------------------------------------------------------
@dataclass(frozen=True)
class IndirectCalls:
    kind: str
    point: str
    path: str  # "bpf" or "slow"
    delta: float  # per operation: retpolines on minus off
    thunk: float  # per indirect call: on minus off
    calls: float


def indirect_calls(result: BenchResult) -> list[IndirectCalls]:
    """Indirect calls per operation, from the retpoline on/off difference.

    With retpolines each indirect call or jump goes through a thunk; without,
    it is a plain "call *%reg".  So the difference in a path's cost between
    the two boots, over the difference in the calibrated cost of one
    indirect call, counts that path's indirect calls.
    """
    on, off = result.calibration.get("retpoline"), result.calibration.get("off")
    if on is None or off is None or on - off <= 0:
        return []
    thunk = on - off
    by_key = {(c.kind, c.mitigation, c.point): c for c in result.comparisons}
    out = []
    for c in result.comparisons:
        other = by_key.get((c.kind, "off", c.point))
        if c.mitigation != "retpoline" or other is None or KINDS[c.kind][2]:
            continue
        for path in ("slow", "bpf"):
            delta = getattr(c, path).median - getattr(other, path).median
            # + 0.0: no "-0.00" in the table
            out.append(IndirectCalls(c.kind, c.point, path, round(delta, 3), thunk,
                                     round(delta / thunk, 2) + 0.0))
    return out


@dataclass(frozen=True)
class CostModel:
    """Estimated cycles = instructions x CPI + indirect calls x penalty.

    Defaults (README, "cost model"): CPI 1.0, and 20 cycles per indirect
    call under retpolines, the misprediction a retpoline forces by design.
    """

    cpi: float = 1.0
    penalty: float = 20.0

    def cycles(self, insns: float, indirect: float) -> float:
        return insns * self.cpi + indirect * self.penalty


def modeled_gain(model: CostModel, slow: tuple[float, float], bpf: tuple[float, float]) -> float:
    """Throughput gain of the programs: (instructions, indirect calls) of each path."""
    return model.cycles(*slow) / model.cycles(*bpf) - 1


def needed_penalty(model: CostModel, slow: tuple[float, float], bpf: tuple[float, float],
                   gain: float) -> float | None:
    """The penalty per indirect call at which the programs gain ``gain``
    (None: no penalty does, the programs save no indirect call)."""
    saved = slow[1] - (1 + gain) * bpf[1]
    if saved <= 0:
        return None
    return model.cpi * ((1 + gain) * bpf[0] - slow[0]) / saved


@dataclass(frozen=True)
class ModelRow:
    kind: str
    point: str
    slow_cycles: float
    bpf_cycles: float
    gain_percent: float
    penalty_for_rfc: float | None  # cycles per indirect call for the RFC's lower bound


def model_rows(result: BenchResult, model: CostModel) -> list[ModelRow]:
    """The cost model applied to the instruction counts with retpolines."""
    calls = {(r.kind, r.point, r.path): r.calls for r in indirect_calls(result)}
    rows = []
    for c in result.comparisons:
        if c.mitigation != "retpoline" or not c.kind.startswith("insns"):
            continue
        if (c.kind, c.point, "slow") not in calls:
            continue
        slow = (c.slow.median, max(calls[(c.kind, c.point, "slow")], 0.0))
        bpf = (c.bpf.median, max(calls[(c.kind, c.point, "bpf")], 0.0))
        rows.append(ModelRow(c.kind, c.point, model.cycles(*slow), model.cycles(*bpf),
                             round(modeled_gain(model, slow, bpf) * 100, 2),
                             needed_penalty(model, slow, bpf, RFC_GAIN["retpoline"][0] / 100)))
    return rows


@dataclass(frozen=True)
class RunDiff:
    kind: str
    mitigation: str
    point: str
    path: str
    a: float
    b: float

    @property
    def rel(self) -> float:
        return (self.b - self.a) / self.a


def compare_runs(a: BenchResult, b: BenchResult) -> list[RunDiff]:
    """Every median two bench runs share, side by side."""
    def medians(result: BenchResult) -> dict[tuple[str, str, str, str], float]:
        return {(c.kind, c.mitigation, c.point, path): getattr(c, path).median
                for c in result.comparisons for path in ("bpf", "slow")}

    ma, mb = medians(a), medians(b)
    return [RunDiff(*key, ma[key], mb[key]) for key in ma if key in mb]


# The RFC's own forwarding figures (cover letter; brief section 5.2): packets per
# second gained by the generated programs.
RFC_GAIN = {"retpoline": (5.0, 13.0), "off": (0.0, 0.0)}


def rfc_verdict(result: BenchResult) -> list[str]:
    """Where each forwarding measurement stands against the RFC's figures."""
    out = []
    for c in result.comparisons:
        if KINDS[c.kind][0] != "forwarding" or c.mitigation not in RFC_GAIN:
            continue
        lo, hi = RFC_GAIN[c.mitigation]
        gain = c.gain_percent
        if c.ratio.lo is None or c.ratio.hi is None:
            ci, shown = (gain, gain), "no interval"
        else:
            ends = sorted(_gain(c.kind, r) for r in (c.ratio.lo, c.ratio.hi))
            ci, shown = (ends[0], ends[1]), f"[{ends[0]:+.1f}%, {ends[1]:+.1f}%]"
        rfc = f"+{lo:.0f}% to +{hi:.0f}%" if hi else "about 0%"
        if ci[1] < lo - 2:
            where = "below"
        elif ci[0] > hi + 2:
            where = "above"
        else:
            where = "consistent with"
        out.append(f"{c.mitigation} {c.point}: {gain:+.1f}% {shown}, {where} the RFC's {rfc}")
    return out


def _gain(kind: str, ratio: float) -> float:
    return (ratio - 1) * 100 if KINDS[kind][2] else (1 / ratio - 1) * 100


def mode_line(result: BenchResult) -> str:
    if result.mode == "icount":
        return (f"benchmark ({result.accel.upper()}, icount: the guest clock counts executed "
                "instructions; figures are instruction counts, the spread is that of the rounds)")
    note = {"tcg": "; wall clock of an emulator: emulation figures, not hardware ones",
            "kvm": "; real time"}.get(result.accel, "")
    return f"benchmark ({result.accel.upper()}{note})"


def format_table(result: BenchResult, model: CostModel | None = None) -> str:
    model = model or result.model or CostModel()
    digits = 0 if result.mode == "icount" else 1
    lines = [mode_line(result)]
    for kind, (title, unit, _) in KINDS.items():
        rows = [c for c in result.comparisons if c.kind == kind]
        if not rows:
            continue
        lines += ["", f"  {title} ({unit}; {rows[0].ratio.interval})",
                  f"  {'':<34} {'programs (switch 1)':>26} {'nf_hook_slow (switch 0)':>26}"
                  f"  {'bpf/slow':>24}  gain"]
        for c in rows:
            lines.append(f"  {c.mitigation + ' ' + c.point:<34} {c.bpf.text(digits):>26} "
                         f"{c.slow.text(digits):>26}  {c.ratio.text(3):>24}  "
                         f"{c.gain_percent:+5.1f}%")
    lines += _calibration_lines(result) + _indirect_lines(result) + _model_lines(result, model)
    lines += _control_lines(result)
    verdict = rfc_verdict(result)
    if verdict:
        lines += ["", "  against the RFC (forwarding gain):"]
        lines += [f"    {v}" for v in verdict]
        if result.accel == "tcg":
            lines.append("    (TCG: QEMU emulates every instruction, so these are not the "
                         "RFC's hardware conditions)")
    for kind, mitigation, point in result.missing:
        lines.append(f"  MISSING: {kind} {mitigation} {point}: no usable measurement")
    for mitigation, raw in result.raw.items():
        if not isinstance(raw, dict):
            continue
        said = str(raw.get("spectre_v2", "unknown"))
        if mitigation == "retpoline" and "Retpoline" not in said:
            lines += ["", f"  WARNING: retpolines were asked for but the guest kernel says "
                      f"'{said}': the 'retpoline' rows are not retpoline figures"]
        notes = fwd_notes(str(raw.get("fwd_output", "")))
        if notes:
            lines += ["", f"  rulesets (retpolines {mitigation}, "
                      f"spectre_v2: {raw.get('spectre_v2', 'unknown')}):"]
            lines += [f"    {n}" for n in notes]
    return "\n".join(lines)


def _calibration_lines(result: BenchResult) -> list[str]:
    if not result.calibration:
        return []
    unit = "instructions" if result.mode == "icount" else "ns"
    return ["", f"  one indirect call over a direct one ({unit}, same boot): " + ", ".join(
        f"retpolines {m}: {v:g}" for m, v in result.calibration.items())]


def _indirect_lines(result: BenchResult) -> list[str]:
    rows = indirect_calls(result)
    if not rows:
        return []
    out = ["", "  indirect calls per operation (retpolines on minus off, over the thunk's "
           f"{rows[0].thunk:g}):",
           f"  {'':<40} {'nf_hook_slow':>14} {'programs':>14} {'saved':>8}"]
    by_point: dict[tuple[str, str], dict[str, IndirectCalls]] = {}
    for r in rows:
        by_point.setdefault((r.kind, r.point), {})[r.path] = r
    for (kind, point), paths in by_point.items():
        label = f"{KINDS[kind][0]} {point}"
        slow, bpf = paths["slow"].calls, paths["bpf"].calls
        out.append(f"  {label:<40} {slow:>14.2f} {bpf:>14.2f} {slow - bpf:>8.2f}")
    if any(r.kind == "insns_per_packet" for r in rows):
        out.append("  (forwarding rows: the on/off difference there also holds other mitigation "
                   "code, RSB filling at context switches for one, so they are estimates; "
                   "'saved', a difference within each boot, is the firmer figure; the "
                   "nf_hook() rows come from loops with interrupts off)")
    return out


def _model_lines(result: BenchResult, model: CostModel) -> list[str]:
    rows = model_rows(result, model)
    if not rows:
        return []
    lo = RFC_GAIN["retpoline"][0]
    out = ["", f"  cost model, retpolines on: cycles = instructions x CPI {model.cpi:.1f} + "
           f"indirect calls x penalty {model.penalty:g}",
           f"  {'':<34} {'nf_hook_slow':>12} {'programs':>12} {'gain':>8}  "
           f"penalty for +{lo:.0f}%"]
    for r in rows:
        need = ("none would do" if r.penalty_for_rfc is None else
                "any (fewer instructions already)" if r.penalty_for_rfc <= 0 else
                f"{r.penalty_for_rfc:.1f}")
        label = f"{KINDS[r.kind][0]} {r.point}"
        out.append(f"  {label:<34} {r.slow_cycles:>12,.0f} {r.bpf_cycles:>12,.0f} "
                   f"{r.gain_percent:>+7.1f}%  {need}")
    return out


def _control_lines(result: BenchResult) -> list[str]:
    if not result.control:
        return []
    out = ["", "  control plane (ns of the guest clock named in each row: 'tcg wall' is "
           "emulation time, 'tcg icount' instructions plus idle time skipped)"]
    for row in result.control:
        out.append("    " + " ".join(f"{k}={_num(v)}" for k, v in row.items()))
    return out


def _num(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def plot(result: BenchResult, path: Path) -> Path:
    """Per call against the hook count (lines), per packet per ruleset (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    call_kind = "insns_per_call" if result.mode == "icount" else "ns_per_call"
    fwd_kind = "insns_per_packet" if result.mode == "icount" else "fwd_pps"
    _plot_calls(axes[0], [c for c in result.comparisons if c.kind == call_kind], call_kind)
    _plot_packets(axes[1], [c for c in result.comparisons if c.kind == fwd_kind], fwd_kind)
    fig.suptitle(mode_line(result).replace("; ", "\n", 1) if len(mode_line(result)) > 90
                 else mode_line(result), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_calls(ax: Any, rows: list[Comparison], kind: str) -> None:
    styles = {("bpf", "retpoline"): ("tab:blue", "-"), ("bpf", "off"): ("tab:blue", "--"),
              ("slow", "retpoline"): ("tab:gray", "-"), ("slow", "off"): ("tab:gray", "--")}
    for (path, mitigation), (color, line) in styles.items():
        pts = sorted((int(c.point.split()[0]), getattr(c, path).median) for c in rows
                     if c.mitigation == mitigation and c.point.endswith(" hooks"))
        name = "programs" if path == "bpf" else "nf_hook_slow"
        state = "on" if mitigation == "retpoline" else mitigation
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], line, color=color, marker="o",
                    markersize=3, label=f"{name}, retpolines {state}")
        more = [(int(c.point.split()[0]), getattr(c, path).median) for c in rows
                if c.mitigation == mitigation and "more programs" in c.point]
        if more and path == "bpf":
            ax.plot([x for x, _ in more], [y for _, y in more], "x", color="tab:red",
                    label=f"programs beyond the dispatcher ({OVERFLOW_FILL} more), "
                          f"retpolines {state}")
    ax.set_xlabel("hooks at the location")
    ax.set_ylabel(KINDS[kind][1].replace("insns", "instructions") + " (nf_hook())")
    ax.legend(fontsize=8)


def _plot_packets(ax: Any, rows: list[Comparison], kind: str) -> None:
    labels = [f"{c.mitigation}\n{c.point}" for c in rows]
    xs = range(len(rows))
    for off, name, color in ((-0.2, "bpf", "tab:blue"), (0.2, "slow", "tab:gray")):
        stats = [getattr(c, name) for c in rows]
        err = [[s.median - (s.lo if s.lo is not None else s.median) for s in stats],
               [(s.hi if s.hi is not None else s.median) - s.median for s in stats]]
        ax.bar([x + off for x in xs], [s.median for s in stats], width=0.4, color=color,
               label="programs (switch 1)" if name == "bpf" else "nf_hook_slow (switch 0)",
               yerr=err, capsize=3)
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel(KINDS[kind][1].replace("insns", "instructions") + " (forwarding)")
    ax.legend(fontsize=8)


# -- running in the guest ---------------------------------------------------------------
def build_module(src: Path, outdir: Path, settings: Settings, progress: Progress,
                 run_dir: Path, name: str = "bench-module") -> Path:
    """Build selftests/bench/nf_hook_bench.ko against the kernel just built."""
    progress.status("building the nf_hook() benchmark module")
    try:
        return kbuild.build_module(settings.selftests_dir / "bench", "nf_hook_bench",
                                   src, outdir, settings, run_dir, name)
    except BuildFailure as exc:
        raise BuildFailure("the benchmark module did not build", hint=exc.hint) from exc


def set_switch(guest: Guest, switch: str, position: str) -> None:
    """Set the series' sysctl ``switch`` (series.toml [runtime]) in the guest."""
    guest.run(["sysctl", "-qw", f"{switch}={position}"], timeout=60)


def run_micro(guest: Guest, module: Path, switch: str, reps: int, iters: int,
              hook_counts: Sequence[int], icount: bool = False, fill: int = 0
              ) -> tuple[dict[str, dict[int, list[float]]], list[float]]:
    """Per-call cost for each hook count, rounds interleaved (1, 0, 1, 0 ...),
    and the calibrated cost of an indirect call of every run."""
    out: dict[str, dict[int, list[float]]] = {"1": {}, "0": {}}
    thunks: list[float] = []
    for hooks in hook_counts:
        for _ in range(reps):
            for position in ("1", "0"):
                set_switch(guest, switch, position)
                run = module_run(guest, module,
                                 [f"hooks={hooks}", f"iters={iters}", f"fill={fill}"])
                out[position].setdefault(hooks, []).append(run.per_call(icount))
                thunks.append(run.thunk)
    set_switch(guest, switch, "1")
    return out, thunks


def module_run(guest: Guest, module: Path, params: Sequence[str]) -> ModuleRun:
    """One insmod, the switch set explicitly before (its default depends on retpolines)."""
    # The module measures in its init and then refuses to stay loaded
    # (-EAGAIN), so insmod "fails" on success.
    ins = guest.run(["insmod", str(module), *params], timeout=1800)
    log = guest.run(["dmesg"], timeout=60).stdout.splitlines()
    run = parse_module_run(log)
    if run is None or f"hooks={run.hooks}" not in params:
        tail = "; ".join(line for line in log[-3:])
        raise GuestFailure("the benchmark module printed no result: "
                           f"{(ins.stderr or ins.stdout).strip()} ({tail})")
    guest.run(["dmesg", "-C"], timeout=60)
    return run


def ctl_positions(has_switch: bool) -> tuple[str | None, ...]:
    """Switch positions of the control-plane rounds: both at the tip (programs
    are generated in both), none on a kernel without the series."""
    return ("1", "0") if has_switch else (None,)


def run_ctl(guest: Guest, module: Path, hook_counts: Sequence[int], rounds: int,
            kernel: str = "tip", switch: str | None = None) -> list[dict[str, Any]]:
    """Register and unregister one hook at a location holding k hooks;
    ``switch``: the series' sysctl, None on a kernel without it."""
    out = []
    for hooks in hook_counts:
        for position in ctl_positions(switch is not None):
            if switch is not None and position is not None:
                set_switch(guest, switch, position)
            guest.run(["insmod", str(module), f"hooks={hooks}", f"ctl={rounds}"], timeout=3600)
            got = parse_ctl(guest.run(["dmesg"], timeout=60).stdout.splitlines())
            guest.run(["dmesg", "-C"], timeout=60)
            if got is None or got.hooks != hooks:
                raise GuestFailure(f"the control-plane measurement at {hooks} hooks printed "
                                   "no result")
            out.append({"what": "register", "kernel": kernel,
                        "switch": "-" if position is None else position, **asdict(got)})
    if switch is not None:
        set_switch(guest, switch, "1")
    return out


def run_ctl_script(guest: Guest, script: Path, netns: int, chains: int,
                   kernel: str = "tip") -> list[dict[str, Any]]:
    res = guest.run(["bash", str(script)], timeout=7200,
                    env={"NETNS": str(netns), "CHAINS": str(chains)})
    if res.returncode != 0:
        raise GuestFailure(f"control-plane script failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout)[-500:]}")
    return [{"kernel": kernel, **row} for row in parse_ctl_script(res.stdout)]


def run_fwd(guest: Guest, script: Path, reps: int, count: int, configs: Sequence[str],
            icount: bool = False) -> tuple[dict[tuple[str, str], list[float]], str]:
    """Forwarding rounds: packets per second, or under icount instructions per packet."""
    env = {"REPS": str(reps), "COUNT": str(count)}
    if icount:
        env["PIN"] = "1"
    res = guest.run(["bash", str(script), *configs], timeout=3600, env=env)
    if res.returncode != 0:
        raise GuestFailure(f"forwarding benchmark failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout)[-500:]}")
    return (parse_fwd_insns(res.stdout) if icount else parse_fwd(res.stdout)), res.stdout


def comparisons(mitigation: str, fwd: dict[tuple[str, str], list[float]],
                micro: dict[str, dict[int, list[float]]],
                configs: Sequence[str] = CONFIGS, hook_counts: Sequence[int] = HOOK_COUNTS,
                icount: bool = False, overflow: dict[str, dict[int, list[float]]] | None = None
                ) -> tuple[list[Comparison], list[tuple[str, str, str]]]:
    """Comparisons for every requested point, and the points that have no data."""
    fwd_kind, call_kind = ("insns_per_packet", "insns_per_call") if icount else \
        ("fwd_pps", "ns_per_call")
    out, missing = [], []
    for config in configs:
        a, b = fwd.get((config, "1")), fwd.get((config, "0"))
        if a and b:
            out.append(compare(fwd_kind, mitigation, config, a, b, icount))
        else:
            missing.append((fwd_kind, mitigation, config))
    Data = dict[str, dict[int, list[float]]] | None
    points: list[tuple[str, int, Data]] = [(f"{h} hooks", h, micro) for h in hook_counts]
    points += [(f"{h} hooks, {OVERFLOW_FILL} more programs", h, overflow)
               for h in sorted((overflow or {}).get("1", {}))]
    for label, hooks, data in points:
        a, b = (data or {}).get("1", {}).get(hooks), (data or {}).get("0", {}).get(hooks)
        if a and b:
            out.append(compare(call_kind, mitigation, label, a, b, icount))
        else:
            missing.append((call_kind, mitigation, label))
    return out, missing


def junit_tree(result: BenchResult) -> ET.ElementTree:
    """One test case per measurement point; a point without data is a failure."""
    root, ts = junit.suite("nf-hook-bench", {
        "tests": str(len(result.comparisons) + len(result.missing)),
        "failures": str(len(result.missing)), "errors": "0", "skipped": "0"},
        {"accel": result.accel, "mode": result.mode, **result.metadata}.items())
    for c in result.comparisons:
        case = ET.SubElement(ts, "testcase", {"classname": f"nf-hook-bench.{c.kind}",
                                              "name": f"{c.mitigation} {c.point}"})
        figures = (("bpf_median", c.bpf.median), ("slow_median", c.slow.median),
                   ("ratio", c.ratio.median), ("ratio_lo", c.ratio.lo),
                   ("ratio_hi", c.ratio.hi), ("gain_percent", c.gain_percent))
        junit.add_properties(case, [(name, f"{value:.4f}") for name, value in figures
                                    if value is not None])
        ET.SubElement(case, "system-out").text = (
            f"bpf {c.bpf.text()} slow {c.slow.text()} ratio {c.ratio.text(3)} "
            f"n={c.ratio.n} ({c.ratio.interval})")
    for kind, mitigation, point in result.missing:
        case = ET.SubElement(ts, "testcase", {"classname": f"nf-hook-bench.{kind}",
                                              "name": f"{mitigation} {point}"})
        ET.SubElement(case, "failure", {"type": "missing",
                                        "message": "no usable measurement"})
    return junit.finish(root)


def past_dispatcher(point: str) -> bool:
    """A point measured with more programs than the BPF dispatcher holds."""
    return point.endswith(f"{OVERFLOW_FILL} more programs")


def format_run_diff(rows: Sequence[RunDiff], other: str, limit: float = 0.01) -> str:
    """This run against an earlier one: every shared median, and the worst.

    Rows past the dispatcher's capacity are judged apart: there, reaching a
    program is a search over the addresses of the programs the dispatcher
    holds (or the indirect fallback), and where programs land in memory
    differs per boot, so those rows move by a few instructions.
    """
    if not rows:
        return f"run-to-run: nothing in common with {other}"

    def worst_of(some: Sequence[RunDiff]) -> str:
        w = max(some, key=lambda r: abs(r.rel))
        return f"largest difference {w.rel:+.3%} ({w.mitigation} {w.point}, {w.path})"

    main = [r for r in rows if not past_dispatcher(r.point)]
    past = [r for r in rows if past_dispatcher(r.point)]
    if main:
        ok = all(abs(r.rel) <= limit for r in main)
        head = (f"run-to-run against {other}: {worst_of(main)}; "
                + ("all within" if ok else "NOT all within") + f" {limit:.0%}")
    else:
        head = f"run-to-run against {other}: nothing else to judge"
    lines = [head]
    if past:
        lines.append("  past the dispatcher's capacity (program addresses decide the search, "
                     f"per boot): {worst_of(past)}")
    for r in rows:
        lines.append(f"  {r.kind:<16} {r.mitigation:<9} {r.point:<30} {r.path:<4} "
                     f"{r.a:>12,.1f} {r.b:>12,.1f} {r.rel:>+8.3%}")
    return "\n".join(lines)


def write(result: BenchResult, run_dir: Path) -> tuple[Path, Path]:
    runfile.write(run_dir / BenchResult.FILE, result.to_json())
    (run_dir / "bench.txt").write_text(format_table(result) + "\n")
    junit.write(junit_tree(result), run_dir / "junit.xml")
    return run_dir / "bench.json", plot(result, run_dir / "bench.png")


def resolve_mode(timing: str, accel: Accel) -> str:
    """--timing auto: instruction counts under TCG, real time under KVM."""
    if timing == "auto":
        return "icount" if accel is Accel.TCG else "wall"
    if timing == "icount" and accel is not Accel.TCG:
        raise UserError("--timing icount needs TCG (QEMU's instruction counter)",
                        hint="use --accel tcg, or --timing wall for real time under KVM")
    if timing not in MODES:
        raise UserError(f"--timing takes auto, {', '.join(MODES)}; got {timing!r}")
    return timing


def bench_cpus(mode: str, requested: int) -> int:
    """vCPUs of the data-path boots: one under icount, where the clock counts
    the instructions of every vCPU, so another's work would land in the window."""
    return 1 if mode == "icount" else requested


def control_clock(mode: str, cpus: int) -> str:
    """The clock of the control-plane boot.  It needs more than one vCPU
    (on one, synchronize_rcu() returns at once and hides the grace periods a
    registration waits for), and QEMU 7.2 here could not boot a 2-vCPU guest
    under -icount (its clock stopped at "Booting SMP configuration"): so
    icount only on one vCPU, else the wall clock, named in every row."""
    return "icount" if mode == "icount" and cpus == 1 else "wall"
