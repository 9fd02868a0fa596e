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

import json
import random
import re
import shutil
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patchgen import build as kbuild
from patchgen import proc
from patchgen.errors import BuildFailure, GuestFailure
from patchgen.progress import Progress
from patchgen.settings import Settings
from patchgen.vm.guest import Guest

CONFIGS = ("none", "filter", "ct", "flowtable")
HOOK_COUNTS = (1, 3, 5, 10, 20)
MITIGATIONS = {"retpoline": (), "off": ("spectre_v2=off",)}
_FWD = re.compile(r"^BENCH config=(\w+) switch=([01]) rep=(\d+) packets=(\d+) pps=(\d+)$", re.M)
_MICRO = re.compile(r"nf_hook_bench: hooks=(\d+) iters=(\d+) passed=(\d+) total_ns=(\d+)")


@dataclass(frozen=True)
class Stat:
    median: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """One measurement point: the generated programs (bpf) against nf_hook_slow() (slow)."""

    kind: str  # "fwd_pps" (higher is better) or "ns_per_call" (lower is better)
    mitigation: str
    point: str  # ruleset name or hook count
    bpf: Stat
    slow: Stat
    ratio: Stat  # bpf / slow

    @property
    def gain_percent(self) -> float:
        """Positive when the programs are better, in the measure's own direction."""
        r = self.ratio.median
        return (r - 1) * 100 if self.kind == "fwd_pps" else (1 / r - 1) * 100


@dataclass
class BenchResult:
    accel: str
    comparisons: list[Comparison] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    # Points asked for that gave no usable measurement (kind, mitigation, point).
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"accel": self.accel, "metadata": self.metadata, "comparisons": [
            {**asdict(c), "gain_percent": round(c.gain_percent, 2)} for c in self.comparisons],
            "missing": [list(m) for m in self.missing], "rfc": rfc_verdict(self),
            "raw": self.raw}


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


def compare(kind: str, mitigation: str, point: str, bpf: Sequence[float],
            slow: Sequence[float]) -> Comparison:
    return Comparison(kind, mitigation, point, bootstrap_median(bpf), bootstrap_median(slow),
                      bootstrap_ratio(bpf, slow))


def parse_fwd(text: str) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = {}
    for config, switch, _, packets, pps in _FWD.findall(text):
        if int(packets) > 0:
            out.setdefault((config, switch), []).append(float(pps))
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


# The RFC's own forwarding figures (cover letter; brief section 5.2): packets per
# second gained by the generated programs.
RFC_GAIN = {"retpoline": (5.0, 13.0), "off": (0.0, 0.0)}


def rfc_verdict(result: BenchResult) -> list[str]:
    """Where each forwarding measurement stands against the RFC's figures."""
    out = []
    for c in result.comparisons:
        if c.kind != "fwd_pps" or c.mitigation not in RFC_GAIN:
            continue
        lo, hi = RFC_GAIN[c.mitigation]
        ci = ((c.ratio.lo - 1) * 100, (c.ratio.hi - 1) * 100)
        rfc = f"+{lo:.0f}% to +{hi:.0f}%" if hi else "about 0%"
        if ci[1] < lo - 2:
            where = "below"
        elif ci[0] > hi + 2:
            where = "above"
        else:
            where = "consistent with"
        out.append(f"{c.mitigation} {c.point}: {c.gain_percent:+.1f}% "
                   f"[{ci[0]:+.1f}%, {ci[1]:+.1f}%], {where} the RFC's {rfc}")
    return out


def format_table(result: BenchResult) -> str:
    lines = [f"benchmark ({result.accel.upper()}"
             + ("; emulation figures, not hardware ones" if result.accel == "tcg" else "") + ")"]
    for kind, unit, title in (("fwd_pps", "pps", "forwarding"),
                              ("ns_per_call", "ns/call", "nf_hook() call")):
        rows = [c for c in result.comparisons if c.kind == kind]
        if not rows:
            continue
        lines.append("")
        lines.append(f"  {title:<22} {'bpf median [95% CI]':>28} {'slow median [95% CI]':>28}"
                     f"  {'bpf/slow [95% CI]':>22}  gain")
        for c in rows:
            lines.append(f"  {c.mitigation + ' ' + c.point:<22} {_fmt(c.bpf, unit):>28} "
                         f"{_fmt(c.slow, unit):>28}  {c.ratio.median:6.3f} "
                         f"[{c.ratio.lo:.3f},{c.ratio.hi:.3f}]  {c.gain_percent:+5.1f}%")
    verdict = rfc_verdict(result)
    if verdict:
        lines += ["", "  against the RFC (forwarding pps gain, 95% CI):"]
        lines += [f"    {v}" for v in verdict]
        if result.accel == "tcg":
            lines.append("    (TCG: QEMU emulates every instruction, so these are not the "
                         "RFC's hardware conditions)")
    for kind, mitigation, point in result.missing:
        lines.append(f"  MISSING: {kind} {mitigation} {point}: no usable measurement")
    for mitigation, raw in result.raw.items():
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


def _fmt(s: Stat, unit: str) -> str:
    return f"{s.median:,.1f} [{s.lo:,.1f},{s.hi:,.1f}] {unit}"


def plot(result: BenchResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, kind, ylabel in ((axes[0], "fwd_pps", "forwarded packets/s"),
                             (axes[1], "ns_per_call", "ns per nf_hook() call")):
        rows = [c for c in result.comparisons if c.kind == kind]
        # "retpoline" + "10 hooks" is wider than a bar pair: one word per line.
        labels = ["\n".join([c.mitigation, *c.point.split()]) for c in rows]
        xs = range(len(rows))
        for off, name, color in ((-0.2, "bpf", "tab:blue"), (0.2, "slow", "tab:gray")):
            stats = [getattr(c, name) for c in rows]
            ax.bar([x + off for x in xs], [s.median for s in stats], width=0.4, color=color,
                   label="programs (switch 1)" if name == "bpf" else "nf_hook_slow (switch 0)",
                   yerr=[[s.median - s.lo for s in stats], [s.hi - s.median for s in stats]],
                   capsize=3)
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    fig.suptitle(f"patchgen bench ({result.accel.upper()}"
                 + (": emulation figures" if result.accel == "tcg" else "") + ")")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -- running in the guest ---------------------------------------------------------------
def build_module(src: Path, outdir: Path, settings: Settings, progress: Progress,
                 run_dir: Path) -> Path:
    """Build selftests/bench/nf_hook_bench.ko against the kernel just built."""
    moddir = run_dir / "bench-module"
    shutil.rmtree(moddir, ignore_errors=True)
    shutil.copytree(settings.selftests_dir / "bench", moddir,
                    ignore=shutil.ignore_patterns("*.sh"))
    progress.status("building the nf_hook() benchmark module")
    log = run_dir / "bench-module.log"
    try:
        proc.stream(kbuild.make_argv(src, outdir, ["modules_prepare"], jobs=settings.jobs),
                    log_path=log, env=kbuild.build_env(settings))
        # The kernel is built without "make modules", so there is no
        # Module.symvers: modpost cannot resolve the module's imports (an
        # error from 6.x on).  Without MODVERSIONS insmod resolves them.
        proc.stream(kbuild.make_argv(src, outdir, ["modules"], jobs=settings.jobs,
                                     make_vars={"M": str(moddir),
                                                "KBUILD_MODPOST_WARN": "1"}),
                    log_path=log, env=kbuild.build_env(settings))
    except Exception as exc:
        raise BuildFailure("the benchmark module did not build", hint=f"log: {log}") from exc
    return moddir / "nf_hook_bench.ko"


def run_micro(guest: Guest, module: Path, reps: int, iters: int,
              hook_counts: Sequence[int]) -> dict[str, dict[int, list[float]]]:
    out: dict[str, dict[int, list[float]]] = {"1": {}, "0": {}}
    for hooks in hook_counts:
        for _ in range(reps):
            for switch in ("1", "0"):
                guest.run(["sysctl", "-qw", f"net.netfilter.nf_hook_bpf={switch}"], timeout=60)
                # The module measures in its init and then refuses to stay
                # loaded (-EAGAIN), so insmod "fails" on success.
                ins = guest.run(["insmod", str(module), f"hooks={hooks}", f"iters={iters}"],
                                timeout=600)
                log = guest.run(["dmesg"], timeout=60).stdout.splitlines()
                got = parse_micro(log)
                if not got:
                    tail = "; ".join(line for line in log[-3:])
                    raise GuestFailure("the benchmark module printed no result: "
                                       f"{(ins.stderr or ins.stdout).strip()} ({tail})")
                out[switch].setdefault(hooks, []).append(got[-1][1])
    guest.run(["sysctl", "-qw", "net.netfilter.nf_hook_bpf=1"], timeout=60)
    return out


def run_fwd(guest: Guest, script: Path, reps: int, count: int,
            configs: Sequence[str]) -> tuple[dict[tuple[str, str], list[float]], str]:
    res = guest.run(["bash", str(script), *configs], timeout=3600,
                    env={"REPS": str(reps), "COUNT": str(count)})
    if res.returncode != 0:
        raise GuestFailure(f"forwarding benchmark failed ({res.returncode}): "
                           f"{(res.stderr or res.stdout)[-500:]}")
    return parse_fwd(res.stdout), res.stdout


def comparisons(mitigation: str, fwd: dict[tuple[str, str], list[float]],
                micro: dict[str, dict[int, list[float]]],
                configs: Sequence[str] = CONFIGS, hook_counts: Sequence[int] = HOOK_COUNTS
                ) -> tuple[list[Comparison], list[tuple[str, str, str]]]:
    """Comparisons for every requested point, and the points that have no data."""
    out, missing = [], []
    for config in configs:
        a, b = fwd.get((config, "1")), fwd.get((config, "0"))
        if a and b:
            out.append(compare("fwd_pps", mitigation, config, a, b))
        else:
            missing.append(("fwd_pps", mitigation, config))
    for hooks in hook_counts:
        a, b = micro.get("1", {}).get(hooks), micro.get("0", {}).get(hooks)
        if a and b:
            out.append(compare("ns_per_call", mitigation, f"{hooks} hooks", a, b))
        else:
            missing.append(("ns_per_call", mitigation, f"{hooks} hooks"))
    return out, missing


def junit_tree(result: BenchResult) -> ET.ElementTree:
    """One test case per measurement point; a point without data is a failure."""
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", {
        "name": "nf-hook-bench", "tests": str(len(result.comparisons) + len(result.missing)),
        "failures": str(len(result.missing)), "errors": "0", "skipped": "0"})
    props = ET.SubElement(ts, "properties")
    for key, value in {"accel": result.accel, **result.metadata}.items():
        ET.SubElement(props, "property", {"name": key, "value": str(value)})
    for c in result.comparisons:
        case = ET.SubElement(ts, "testcase", {"classname": f"nf-hook-bench.{c.kind}",
                                              "name": f"{c.mitigation} {c.point}"})
        cprops = ET.SubElement(case, "properties")
        for name, value in (("bpf_median", c.bpf.median), ("slow_median", c.slow.median),
                            ("ratio", c.ratio.median), ("ratio_lo", c.ratio.lo),
                            ("ratio_hi", c.ratio.hi), ("gain_percent", c.gain_percent)):
            ET.SubElement(cprops, "property", {"name": name, "value": f"{value:.4f}"})
        ET.SubElement(case, "system-out").text = (
            f"bpf {c.bpf.median:.1f} [{c.bpf.lo:.1f},{c.bpf.hi:.1f}] slow {c.slow.median:.1f} "
            f"[{c.slow.lo:.1f},{c.slow.hi:.1f}] ratio {c.ratio.median:.3f} "
            f"[{c.ratio.lo:.3f},{c.ratio.hi:.3f}] n={c.ratio.n}")
    for kind, mitigation, point in result.missing:
        case = ET.SubElement(ts, "testcase", {"classname": f"nf-hook-bench.{kind}",
                                              "name": f"{mitigation} {point}"})
        ET.SubElement(case, "failure", {"type": "missing",
                                        "message": "no usable measurement"})
    ET.indent(root)
    return ET.ElementTree(root)


def write(result: BenchResult, run_dir: Path) -> tuple[Path, Path]:
    (run_dir / "bench.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    (run_dir / "bench.txt").write_text(format_table(result) + "\n")
    junit_tree(result).write(run_dir / "junit.xml", encoding="unicode", xml_declaration=True)
    return run_dir / "bench.json", plot(result, run_dir / "bench.png")
