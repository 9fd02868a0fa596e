"""Kconfig as values: fragments, profiles, merging, and checking the result.

``merge_config.sh`` + ``olddefconfig`` silently drop options whose
dependencies are missing, so after every merge each requested option is
compared with the final ``.config``; the ones that did not survive are
named.  Options that the tree does not define at all (a symbol renamed in
another kernel version) are reported separately and are not an error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from patchgen import proc
from patchgen.errors import BuildFailure, UserError

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")
_SYMBOL = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)


@dataclass(frozen=True)
class KconfigEntry:
    name: str
    value: str  # "y", "m", "n", a number or a quoted string

    def __str__(self) -> str:
        if self.value == "n":
            return f"# CONFIG_{self.name} is not set"
        return f"CONFIG_{self.name}={self.value}"


@dataclass(frozen=True)
class Kconfig:
    entries: Mapping[str, str]

    @classmethod
    def parse(cls, text: str) -> Kconfig:
        entries: dict[str, str] = {}
        for raw in text.splitlines():
            line = raw.strip()
            if m := _SET.match(line):
                entries[m.group(1)] = m.group(2)
            elif m := _UNSET.match(line):
                entries[m.group(1)] = "n"
        return cls(entries)

    @classmethod
    def from_file(cls, path: Path) -> Kconfig:
        return cls.parse(path.read_text())

    def get(self, name: str) -> str:
        """The value, with absent options read as "n" (as Kconfig does)."""
        return self.entries.get(name, "n")

    def merged(self, other: Kconfig) -> Kconfig:
        return Kconfig({**self.entries, **other.entries})

    def items(self) -> list[KconfigEntry]:
        return [KconfigEntry(k, v) for k, v in self.entries.items()]


@dataclass(frozen=True)
class Dropped:
    name: str
    requested: str
    actual: str

    def __str__(self) -> str:
        return f"CONFIG_{self.name}: requested {self.requested}, got {self.actual}"


@dataclass(frozen=True)
class Validation:
    dropped: tuple[Dropped, ...]
    not_in_tree: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.dropped


def validate(requested: Kconfig, final: Kconfig, tree_symbols: set[str]) -> Validation:
    dropped: list[Dropped] = []
    absent: list[str] = []
    for name, want in requested.entries.items():
        if name not in tree_symbols:
            absent.append(name)
            continue
        got = final.get(name)
        if got != want:
            dropped.append(Dropped(name, want, got))
    return Validation(tuple(dropped), tuple(sorted(absent)))


def tree_symbols(src: Path) -> set[str]:
    """Every symbol some Kconfig file of the tree defines."""
    symbols: set[str] = set()
    for path in _kconfig_files(src):
        symbols.update(_SYMBOL.findall(path.read_text(errors="replace")))
    return symbols


def _kconfig_files(src: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("Kconfig"):
                yield Path(dirpath) / name


# -- profiles ------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    fragments: tuple[Path, ...]
    extra: tuple[KconfigEntry, ...] = field(default=())
    # "allnoconfig": the fragments and extras on top of allnoconfig;
    # "allmodconfig": everything as a module, the extras forced on top.
    base: str = "allnoconfig"
    # Only the extras must survive olddefconfig: options of the fragments
    # that depend on what the extras turn off may go (a config matrix entry).
    relaxed: bool = False
    # The kernel's ARCH, and the prefix of the cross toolchain when it is not
    # the host's (a matrix entry that builds another architecture).
    arch: str = "x86_64"
    cross_compile: str = ""

    def make_vars(self) -> dict[str, str]:
        """What make needs besides ARCH to build for this profile."""
        return {"CROSS_COMPILE": self.cross_compile} if self.cross_compile else {}

    def requested(self) -> Kconfig:
        merged = Kconfig({})
        for frag in self.fragments:
            merged = merged.merged(Kconfig.from_file(frag))
        return merged.merged(self.extras())

    def extras(self) -> Kconfig:
        return Kconfig({e.name: e.value for e in self.extra})

    def checked(self) -> Kconfig:
        """What must survive olddefconfig."""
        return self.extras() if self.relaxed or self.base != "allnoconfig" else self.requested()

    def with_extra(self, suffix: str, entries: Iterable[KconfigEntry], *,
                   base: str | None = None, relaxed: bool | None = None) -> Profile:
        return Profile(f"{self.name}+{suffix}", self.description, self.fragments,
                       (*self.extra, *entries), base or self.base,
                       self.relaxed if relaxed is None else relaxed, self.arch,
                       self.cross_compile)

    def for_arch(self, arch: str, cross_compile: str) -> Profile:
        """This profile built for another architecture; options of the
        fragments that the architecture lacks may go (relaxed)."""
        return dataclasses.replace(self, name=f"{self.name}+{arch}", relaxed=True, arch=arch,
                                   cross_compile=cross_compile)

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.base}\0{self.relaxed}\0".encode())
        if self.arch != "x86_64":
            h.update(f"{self.arch}\0{self.cross_compile}\0".encode())
        for frag in self.fragments:
            h.update(frag.name.encode() + b"\0" + frag.read_bytes())
        for e in self.extra:
            h.update(str(e).encode() + b"\n")
        return h.hexdigest()[:16]


def load_profiles(config_dir: Path) -> dict[str, Profile]:
    data = tomllib.loads((config_dir / "profiles.toml").read_text())
    profiles = {}
    for name, spec in data["profile"].items():
        frags = tuple(config_dir / f for f in spec["fragments"])
        for frag in frags:
            if not frag.exists():
                raise UserError(f"profile {name}: missing fragment {frag}")
        profiles[name] = Profile(name, spec.get("description", ""), frags)
    return profiles


def get_profile(config_dir: Path, name: str) -> Profile:
    profiles = load_profiles(config_dir)
    if name not in profiles:
        raise UserError(f"unknown config profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


# -- merging ---------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigResult:
    config: Path
    digest: str  # sha256 of the final .config
    validation: Validation
    changed: bool


def merge_config_argv(src: Path, outdir: Path, fragments: Iterable[Path]) -> list[str]:
    """merge_config.sh on top of allnoconfig (-n): only what we ask for is built."""
    return [str(src / "scripts" / "kconfig" / "merge_config.sh"), "-n", "-O", str(outdir),
            *(str(f) for f in fragments)]


def allconfig_argv(src: Path, outdir: Path, target: str, arch: str,
                   cross_compile: str = "") -> list[str]:
    """make allmodconfig (or another all*config) into ``outdir``."""
    cross = [f"CROSS_COMPILE={cross_compile}"] if cross_compile else []
    return ["make", "-C", str(src), f"O={outdir}", f"ARCH={arch}", *cross, target]


def configure(src: Path, outdir: Path, profile: Profile, *, log_path: Path) -> ConfigResult:
    """Write ``outdir/.config`` for ``profile`` and check that every option took."""
    outdir.mkdir(parents=True, exist_ok=True)
    config = outdir / ".config"
    before = config.read_bytes() if config.exists() else None
    before_stat = config.stat() if config.exists() else None
    fragments = list(profile.fragments)
    extra = outdir / "patchgen-extra.config"
    if profile.extra:
        extra.write_text("".join(f"{e}\n" for e in profile.extra))
        fragments.append(extra)
    if profile.base == "allmodconfig":
        proc.stream(allconfig_argv(src, outdir, "allmodconfig", profile.arch,
                                   profile.cross_compile), log_path=log_path,
                    cwd=src, env={"KCONFIG_ALLCONFIG": str(extra) if profile.extra else ""})
    else:
        proc.stream(merge_config_argv(src, outdir, fragments), log_path=log_path, cwd=src,
                    env={"ARCH": profile.arch, **profile.make_vars()})
    after = config.read_bytes()
    if before is not None and before_stat is not None and before == after:
        # Same content: keep the old timestamp so make sees nothing new.
        os.utime(config, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))
    validation = validate(profile.checked(), Kconfig.parse(after.decode()), tree_symbols(src))
    if not validation.ok:
        names = "\n  ".join(str(d) for d in validation.dropped)
        raise BuildFailure(
            f"config profile {profile.name}: {len(validation.dropped)} requested option(s) "
            f"did not survive olddefconfig:\n  {names}",
            hint="a dependency is missing from the fragments in kernel-config/",
        )
    return ConfigResult(config, hashlib.sha256(after).hexdigest(), validation,
                        before != after)
