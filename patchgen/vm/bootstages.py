"""Where a guest's boot time goes: per-stage durations from its console log.

Pure: ``boot_stages`` takes the console text (printk timestamps, the guest's
clock) and the host-side moments ``Guest`` records (seconds after vng was
started, the host's clock) and returns the stages in order:

========== ====== ==========================================================
stage      clock  from → to
========== ====== ==========================================================
host       host   vng started → first kernel line on the console (vng's own
                  set-up: virtiofsd probe, SSH keys; QEMU, firmware,
                  kernel decompression)
kernel     guest  kernel start → init runs (``Run ... as init process``)
init       guest  init → ``basic initialization done`` (mounts,
                  systemd-tmpfiles)
services   guest  → ``starting script`` (udev coldplug and settle, DHCP and
                  sshd, run side by side by virtme-ng-init)
script     guest  → ``patchgen-guest-ready`` (patchgen-guest-init.sh)
ssh        host   ready line seen → SSH connected (Guest connects while the
                  script runs, so this is what the connection takes longer)
other      host   what the stages above leave of the total (console
                  delivery, polling, clock skew)
========== ====== ==========================================================

Details inside ``services`` (they overlap, so they are not stages): ``udev``
(``Starting systemd-udevd`` → ``udev is done``) and ``dhcp`` (``setting up
network device`` → the lease; udhcpc's lines reach the console together when
it ends).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_PRINTK = re.compile(r"^\[\s*(\d+\.\d+)\] (.*)$")
# Guest marks: name → pattern of the printk line's text (first match wins).
_MARKS = {
    "init": re.compile(r"^Run \S+ as init process"),
    "basic_done": re.compile(r"virtme-ng-init: basic initialization done"),
    "net_start": re.compile(r"virtme-ng-init: setting up network device"),
    "udev_start": re.compile(r"virtme-ng-init: (?:Starting systemd-udevd|triggering udev)"),
    "udev_done": re.compile(r"virtme-ng-init: udev is done"),
    "lease": re.compile(r"udhcpc: lease of "),
    "script": re.compile(r"virtme-ng-init: starting script"),
    "ready": re.compile(r"patchgen-guest-ready"),
}
# Stages between guest marks: (name, from, to).
_GUEST_STAGES = (("kernel", None, "init"), ("init", "init", "basic_done"),
                 ("services", "basic_done", "script"), ("script", "script", "ready"))
_DETAILS = (("udev", "udev_start", "udev_done"), ("dhcp", "net_start", "lease"))


@dataclass(frozen=True)
class HostMarks:
    """Seconds after vng started, on the host's clock (None: not seen)."""

    first_kernel_line: float | None
    ready_seen: float | None
    ssh_connected: float


@dataclass(frozen=True)
class BootStages:
    total: float
    stages: tuple[tuple[str, float], ...]
    details: tuple[tuple[str, float], ...] = ()

    def record(self) -> dict[str, Any]:
        """For report.json: the total, the stages and the details, in seconds."""
        return {"total": round(self.total, 2),
                "stages": {name: round(s, 2) for name, s in self.stages},
                "details": {name: round(s, 2) for name, s in self.details}}

    def line(self) -> str:
        """One line for the text summary: ``host 4.1s, kernel 1.2s, ...``."""
        return record_line(self.record())


def record_line(record: Mapping[str, Any]) -> str:
    """``record()`` (as read back from report.json) as one line of text."""
    text = ", ".join(f"{name} {s:.1f}s" for name, s in record.get("stages", {}).items())
    details = record.get("details") or {}
    if details:
        text += " (within services: " + ", ".join(f"{n} {s:.1f}s"
                                                   for n, s in details.items()) + ")"
    return text


def guest_marks(console: str) -> dict[str, float]:
    """The printk time of the first line of each mark in ``console``."""
    marks: dict[str, float] = {}
    for raw in console.splitlines():
        m = _PRINTK.match(raw)
        if m is None:
            continue
        t, text = float(m.group(1)), m.group(2)
        for name, pattern in _MARKS.items():
            if name not in marks and pattern.search(text):
                marks[name] = t
    return marks


def _between(marks: dict[str, float], spans: Sequence[tuple[str, str | None, str]]
             ) -> list[tuple[str, float]]:
    out = []
    for name, start, end in spans:
        begin = 0.0 if start is None else marks.get(start)
        if begin is not None and end in marks:
            out.append((name, max(0.0, marks[end] - begin)))
    return out


def boot_stages(console: str, host: HostMarks) -> BootStages:
    """Per-stage durations of one boot (stages whose marks are missing are left out)."""
    marks = guest_marks(console)
    stages: list[tuple[str, float]] = []
    if host.first_kernel_line is not None:
        stages.append(("host", host.first_kernel_line))
    stages += _between(marks, _GUEST_STAGES)
    if host.ready_seen is not None:
        stages.append(("ssh", max(0.0, host.ssh_connected - host.ready_seen)))
    other = host.ssh_connected - sum(s for _, s in stages)
    if stages:
        stages.append(("other", other))
    return BootStages(host.ssh_connected, tuple(stages), tuple(_between(marks, _DETAILS)))


def boot_stages_note(stages: BootStages | None) -> str:
    """``"; boot: host 4.1s, ..."`` for a progress line ("" when unknown)."""
    return f"; boot: {stages.line()}" if stages is not None else ""
