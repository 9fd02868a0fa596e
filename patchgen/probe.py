"""Probe a kernel tree for the facts later stages depend on.

The probes themselves are data (``patchgen/data/probes.toml``); this module
only knows how to run each kind.  Stages read the typed ``TreeFacts`` and
never test the kernel version themselves.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from patchgen.errors import UserError

ProbeValue = str | bool | None


@dataclass(frozen=True, order=True)
class KernelVersion:
    major: int
    minor: int
    sublevel: int
    extra: str = ""

    @property
    def series(self) -> str:
        return f"{self.major}.{self.minor}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.sublevel}{self.extra}"


@dataclass(frozen=True)
class TreeFacts:
    """What the probes found.  Field names match the keys of probes.toml."""

    version: KernelVersion
    selftests_dir: str | None
    netdev_header: str | None
    nf_reinject_file: str | None
    retpoline_symbol: str | None
    has_egress_hook: bool
    has_hook_op_bpf: bool
    has_bpf_link: bool
    has_clusterip: bool
    kfree_skb_reason_inline: bool
    has_sk_skb_reason_drop: bool
    bpf_link_kconfig: str | None
    has_register_net_sysctl_sz: bool
    unbound_wq: str | None
    has_kmalloc_obj: bool
    bpf_prog_alloc_id_static: bool
    dispatcher_max: str | None
    lsm_bpf_prog_hook: str | None
    lsm_prog_load_kernel_arg: bool

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, KernelVersion) else value
        return out


_MAKEFILE_VAR = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)\s*$", re.M)


def read_version(tree: Path) -> KernelVersion:
    makefile = tree / "Makefile"
    try:
        text = makefile.read_text(errors="replace")[:4096]
    except OSError as exc:
        raise UserError(f"not a kernel tree (no top-level Makefile): {tree}") from exc
    found = dict(_MAKEFILE_VAR.findall(text))
    try:
        return KernelVersion(
            int(found["VERSION"]),
            int(found["PATCHLEVEL"]),
            int(found.get("SUBLEVEL") or 0),
            found.get("EXTRAVERSION", ""),
        )
    except (KeyError, ValueError) as exc:
        raise UserError(f"not a kernel tree (Makefile has no VERSION/PATCHLEVEL): {tree}") from exc


def load_probes() -> Mapping[str, Mapping[str, Any]]:
    text = resources.files("patchgen").joinpath("data/probes.toml").read_text()
    return tomllib.loads(text)


def run_probe(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    kind = spec["kind"]
    runner = _KINDS.get(kind)
    if runner is None:
        raise ValueError(f"unknown probe kind: {kind}")
    return runner(tree, spec)


def _first_existing(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    for rel in spec["paths"]:
        if (tree / rel).exists():
            return str(rel)
    return None


def _exists(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    return (tree / str(spec["path"])).exists()


def _defines_function(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    # A definition starts a line with the return type, and the name is
    # followed by "(" and not ended by ";" on the same line (a prototype).
    pattern = re.compile(rf"^[a-z_][^;\n]*\b{re.escape(spec['function'])}\(([^;]*)$", re.M)
    for path in sorted(tree.glob(spec["glob"])):
        if pattern.search(path.read_text(errors="replace")):
            return str(path.relative_to(tree))
    return None


def _kconfig_symbol(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    texts = [p.read_text(errors="replace") for p in sorted(tree.glob(spec["glob"]))]
    for symbol in spec["symbols"]:
        pattern = re.compile(rf"^\s*(?:menu)?config\s+{re.escape(symbol)}\s*$", re.M)
        if any(pattern.search(t) for t in texts):
            return str(symbol)
    return None


def _grep(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    path = tree / spec["path"]
    if not path.exists():
        return False
    return re.search(spec["pattern"], path.read_text(errors="replace")) is not None


def _capture(tree: Path, spec: Mapping[str, Any]) -> ProbeValue:
    path = tree / spec["path"]
    if not path.exists():
        return None
    m = re.search(spec["pattern"], path.read_text(errors="replace"))
    return m.group(1) if m else None


_KINDS = {
    "capture": _capture,
    "first_existing": _first_existing,
    "exists": _exists,
    "defines_function": _defines_function,
    "kconfig_symbol": _kconfig_symbol,
    "grep": _grep,
}


def probe_tree(tree: Path) -> TreeFacts:
    version = read_version(tree)
    answers: dict[str, Any] = {"version": version}
    for name, spec in load_probes().items():
        answers[name] = run_probe(tree, spec)
    expected = {f.name for f in fields(TreeFacts)}
    missing = expected - answers.keys()
    if missing:
        raise ValueError(f"probes.toml lacks probes for: {sorted(missing)}")
    return TreeFacts(**{k: v for k, v in answers.items() if k in expected})
