"""KVM or TCG: decided by trying, not by looking.

``/dev/kvm`` can exist and even create VMs while a real kernel still hangs
under it (this machine: the guest never gets past "Decompressing Linux...").
So the decision boots the kernel at hand under KVM with the same CPU model
vng would use, and accepts KVM only if the kernel prints its banner within a
few seconds.  The verdict is cached per host boot and QEMU version, so the
probe costs its few seconds once.
"""

from __future__ import annotations

import enum
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from patchgen import proc
from patchgen.progress import Progress

BANNER = "Linux version"


class Accel(enum.Enum):
    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True)
class AccelDecision:
    accel: Accel
    reason: str


def kvm_probe_argv(qemu: str, kernel: Path) -> list[str]:
    """Boot ``kernel`` under KVM with no root: enough to see the banner."""
    return [
        qemu, "-accel", "kvm", "-cpu", "host", "-m", "256M", "-smp", "1",
        "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio",
        "-kernel", str(kernel),
        "-append", "console=ttyS0 earlyprintk=serial panic=-1",
    ]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _qemu_version(qemu: str) -> str:
    res = proc.run([qemu, "--version"], check=False, timeout=30)
    return res.stdout.splitlines()[0] if res.stdout else "unknown"


def decide(requested: str, kernel: Path, cache_dir: Path, progress: Progress,
           probe_timeout: float = 20.0) -> AccelDecision:
    """``requested`` is "kvm", "tcg" or "auto"."""
    if requested == "kvm":
        return AccelDecision(Accel.KVM, "requested with --accel kvm")
    if requested == "tcg":
        return AccelDecision(Accel.TCG, "requested with --accel tcg")
    if not os.path.exists("/dev/kvm"):
        return AccelDecision(Accel.TCG, "no /dev/kvm")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return AccelDecision(Accel.TCG, "/dev/kvm is not accessible (add yourself to group kvm)")
    qemu = proc.require("qemu-system-x86_64")
    key = f"{_boot_id()} {_qemu_version(qemu)}"
    cache = cache_dir / "kvm-probe.json"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return AccelDecision(Accel(cached["accel"]), cached["reason"] + " (cached)")
    except (OSError, ValueError, KeyError):
        pass
    progress.status("checking whether KVM can boot a kernel here")
    decision = probe(qemu, kernel, cache_dir / "kvm-probe.log", probe_timeout)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "accel": decision.accel.value,
                                 "reason": decision.reason}) + "\n")
    return decision


def probe(qemu: str, kernel: Path, log_path: Path, timeout: float) -> AccelDecision:
    start = time.monotonic()
    with proc.background(kvm_probe_argv(qemu, kernel), log_path=log_path) as child:
        while time.monotonic() - start < timeout:
            text = log_path.read_text(errors="replace")
            if BANNER in text:
                secs = time.monotonic() - start
                return AccelDecision(Accel.KVM, f"KVM booted a kernel in {secs:.1f}s")
            if child.poll() is not None:
                last = text.strip().splitlines()[-1:] or ["(no output)"]
                return AccelDecision(Accel.TCG, f"KVM present but QEMU failed: {last[0]}")
            time.sleep(0.2)
    return AccelDecision(
        Accel.TCG,
        f"KVM present but unusable: no kernel banner within {timeout:.0f}s "
        f"(see {log_path}); falling back to TCG",
    )
