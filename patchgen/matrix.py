"""The config matrix of ``patchgen check``, as data (``kernel-config/matrix.toml``).

Every patch is built in each configuration of the chosen tier, as the
build bots of the netfilter and bpf trees would: the profile itself, the
series' option off, and the options whose absence changes which code a
patch compiles (XFRM, IPv6, bridge netfilter, NAT, the BPF JIT,
mitigations), plus allmodconfig for the directories the series touches.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from patchgen.errors import MissingTool, UserError
from patchgen.kconfig import KconfigEntry, Profile

TIERS = ("quick", "full")
SCOPES = ("full", "dirs")
BASES = ("profile", "allmodconfig")


@dataclass(frozen=True)
class MatrixConfig:
    name: str
    settings: tuple[KconfigEntry, ...]
    scope: str  # "full" (bzImage) or "dirs" (the directories the series touches)
    tier: str
    base: str = "profile"
    arch: str = "x86_64"
    cross_compile: str = ""  # the cross toolchain's prefix, for another arch

    def profile(self, base: Profile) -> Profile:
        """The build profile: ``base`` itself when nothing is set on top."""
        if self.arch != base.arch:
            base = base.for_arch(self.arch, self.cross_compile)
        if not self.settings and self.base == "profile":
            return base
        suffix = self.name.replace("=", "_")
        if self.base == "allmodconfig":
            return Profile(f"{base.name}+{suffix}", f"allmodconfig ({self.name})", (),
                           self.settings, "allmodconfig", True, base.arch, base.cross_compile)
        return base.with_extra(suffix, self.settings, relaxed=True)

    def applies(self, symbols: set[str]) -> bool:
        """Whether the tree (at some commit) defines an option this config sets.

        A config that sets only options the tree does not have yet is the
        profile build again; an allmodconfig build always applies.
        """
        if self.base == "allmodconfig" or not self.settings:
            return True
        return any(e.name in symbols for e in self.settings)


def _entry(text: str, where: str) -> KconfigEntry:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise UserError(f"{where}: {text!r} is not NAME=value")
    return KconfigEntry(name.removeprefix("CONFIG_"), value)


def load(config_dir: Path) -> tuple[MatrixConfig, ...]:
    path = config_dir / "matrix.toml"
    data = tomllib.loads(path.read_text())
    out = []
    for i, c in enumerate(data.get("config", []), 1):
        where = f"{path}: config {i} ({c.get('name', '?')})"
        cfg = MatrixConfig(c["name"], tuple(_entry(t, where) for t in c.get("set", [])),
                           c.get("scope", "full"), c.get("tier", "full"),
                           c.get("base", "profile"), c.get("arch", "x86_64"),
                           c.get("cross_compile", ""))
        if cfg.arch != "x86_64" and (not cfg.cross_compile or cfg.scope != "dirs"):
            raise UserError(f"{where}: another arch needs cross_compile and scope \"dirs\" "
                            "(the guest and the image are x86_64)")
        for value, known, what in ((cfg.scope, SCOPES, "scope"), (cfg.tier, TIERS, "tier"),
                                   (cfg.base, BASES, "base")):
            if value not in known:
                raise UserError(f"{where}: {what} {value!r}; known: {', '.join(known)}")
        out.append(cfg)
    if not out or out[0].settings or out[0].base != "profile":
        raise UserError(f"{path}: the first config must be the profile itself (no 'set')")
    return tuple(out)


def select(configs: tuple[MatrixConfig, ...], tier: str,
           names: tuple[str, ...] = ()) -> tuple[MatrixConfig, ...]:
    """The configs of ``tier`` ("full" includes "quick"), or the ones named."""
    if tier not in TIERS:
        raise UserError(f"--matrix {tier!r}; known: {', '.join(TIERS)}")
    if names:
        known = {c.name: c for c in configs}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UserError(f"unknown config(s) {', '.join(unknown)}; the matrix has: "
                            + ", ".join(known))
        return tuple(known[n] for n in names)
    wanted = TIERS[:TIERS.index(tier) + 1]
    return tuple(c for c in configs if c.tier in wanted)


def toolchains(configs: Iterable[MatrixConfig]) -> None:
    """Every cross compiler the configs need is installed (else: which package)."""
    for c in configs:
        if c.cross_compile:
            gcc = f"{c.cross_compile}gcc"
            if shutil.which(gcc) is None:
                raise MissingTool(gcc, f"gcc-{c.cross_compile.rstrip('-')}")
