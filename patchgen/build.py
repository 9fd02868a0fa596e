"""Kernel builds: one out-of-tree directory per tree and config, ccache, logs kept.

The make command line is built by a pure function (unit-tested); running it
streams the output into a log, shows progress, and on failure extracts the
first compiler or linker errors with file:line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from patchgen import proc
from patchgen.errors import BuildFailure, CommandFailed
from patchgen.git import Git
from patchgen.kconfig import ConfigResult, Profile, configure
from patchgen.progress import Progress
from patchgen.settings import Settings

ARCH = "x86_64"
IMAGE = Path("arch/x86/boot/bzImage")

_DIAG = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
    r"(?P<kind>fatal error|error|warning):\s*(?P<msg>.*)$"
)
_LINK = re.compile(
    r"^(?:ld|.*-ld|ld\.lld):\s*(?P<msg>.*(?:undefined reference|multiple definition).*)$"
)
_STEP = re.compile(r"^\s{2}(?P<step>[A-Z][A-Z0-9_]*)\s+(?P<what>\S+)")


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    kind: str  # "error", "warning", "fatal error", "link error"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class BuildResult:
    outdir: Path
    image: Path
    commit: str
    config_digest: str
    elapsed: float
    compiled: int
    skipped: bool
    log: Path
    warnings: tuple[Diagnostic, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("outdir", "image", "log"):
            d[key] = str(d[key])
        return d


def make_argv(
    src: Path,
    outdir: Path,
    targets: Sequence[str],
    *,
    jobs: int,
    make_vars: Mapping[str, str] | None = None,
    arch: str = ARCH,
) -> list[str]:
    """The make command line for an out-of-tree kernel build."""
    argv = ["make", "-C", str(src), f"O={outdir}", f"ARCH={arch}", f"-j{jobs}"]
    argv += [f"{k}={v}" for k, v in sorted((make_vars or {}).items())]
    argv += list(targets)
    return argv


def build_env(settings: Settings) -> dict[str, str]:
    """ccache through PATH (changing CC would force a full rebuild), fixed build stamps."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    if os.path.isdir("/usr/lib/ccache"):
        path = "/usr/lib/ccache:" + path
    return {
        "PATH": path,
        "CCACHE_DIR": str(settings.ccache_dir),
        "CCACHE_BASEDIR": str(settings.cache),
        "CCACHE_MAXSIZE": os.environ.get("CCACHE_MAXSIZE", "10G"),
        "KBUILD_BUILD_USER": "patchgen",
        "KBUILD_BUILD_HOST": "patchgen",
        "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 2026",
        # Set (even empty) LOCALVERSION keeps setlocalversion away from git:
        # otherwise a tag made by prep turns "6.1.192+" into "6.1.192" and an
        # out-of-tree module no longer matches the kernel it was built for.
        "LOCALVERSION": "",
    }


def parse_diagnostics(lines: Sequence[str], src: Path | None = None) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for line in lines:
        if m := _DIAG.match(line):
            out.append(Diagnostic(_relative(m["file"], src), int(m["line"]), m["kind"], m["msg"]))
        elif m := _LINK.match(line):
            out.append(Diagnostic("vmlinux", 0, "link error", m["msg"].strip()))
    return out


def _relative(file: str, src: Path | None) -> str:
    if src is None:
        return file
    path = Path(file)
    if path.is_absolute():
        try:
            return str(path.relative_to(src))
        except ValueError:
            return file
    # In an O= build, gcc names sources relative to the build directory;
    # with ccache's base directory that path climbs to the cache and back
    # down through the source tree ("../../../worktrees/<tree>/net/...").
    parts = path.parts
    while parts and parts[0] == "..":
        parts = parts[1:]
    if src.name in parts:
        parts = parts[parts.index(src.name) + 1:]
    return str(Path(*parts)) if parts else file


def read_log_lines(log_path: Path, since: int) -> list[str]:
    with log_path.open(errors="replace") as f:
        f.seek(since)
        return f.read().splitlines()


def make_errors(lines: Sequence[str]) -> list[str]:
    """No compiler diagnostic: show what precedes make's first "***" line."""
    for i, line in enumerate(lines):
        if "*** [" in line or line.startswith("make: ***"):
            before = [x for x in lines[max(0, i - 4):i] if not x.startswith(("make", "  "))]
            return [*before, line.strip()]
    return ["(no error message found; see the log)"]


@dataclass(frozen=True)
class BuildRequest:
    src: Path  # a worktree patchgen owns
    outdir: Path
    profile: Profile
    targets: tuple[str, ...] = ("bzImage",)
    make_vars: Mapping[str, str] = field(default_factory=dict)


def build_dir(settings: Settings, tree_id: str, profile: Profile) -> Path:
    return settings.builds / tree_id / profile.name


def _stamp_key(commit: str, req: BuildRequest) -> dict[str, Any]:
    return {
        "commit": commit,
        "profile": req.profile.name,
        "profile_digest": req.profile.digest(),
        "targets": list(req.targets),
        "make_vars": dict(req.make_vars),
        # Part of the key so kernels built before LOCALVERSION was pinned rebuild.
        "localversion": "",
    }


def _load_stamp(outdir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((outdir / "patchgen-build.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


def build(req: BuildRequest, settings: Settings, progress: Progress, log_path: Path) -> BuildResult:
    """Configure and build; skip make entirely when commit and config are unchanged."""
    git = Git(req.src)
    commit = git.head()
    key = _stamp_key(commit, req)
    stamp = _load_stamp(req.outdir)
    image = req.outdir / IMAGE
    if stamp.get("key") == key and image.exists() and not git.dirty_files():
        progress.info(f"up to date: {commit[:12]} with profile {req.profile.name} ({req.outdir})")
        return BuildResult(req.outdir, image, commit, stamp["config_digest"], 0.0, 0, True,
                           log_path)
    start = time.monotonic()
    cfg = _configure(req, progress, log_path)
    compiled = _make(req, settings, progress, log_path, expected=int(stamp.get("compiled", 0)))
    elapsed = time.monotonic() - start
    (req.outdir / "patchgen-build.json").write_text(json.dumps(
        {"key": key, "config_digest": cfg.digest, "compiled": compiled or stamp.get("compiled", 0),
         "elapsed": elapsed}, indent=2) + "\n")
    return BuildResult(req.outdir, image, commit, cfg.digest, elapsed, compiled, False, log_path)


def _configure(req: BuildRequest, progress: Progress, log_path: Path) -> ConfigResult:
    progress.status(f"configuring ({req.profile.name})")
    cfg = configure(req.src, req.outdir, req.profile, log_path=log_path)
    if cfg.validation.not_in_tree:
        progress.info("options not defined by this tree (ignored): "
                      + ", ".join(cfg.validation.not_in_tree))
    return cfg


def _make(req: BuildRequest, settings: Settings, progress: Progress, log_path: Path,
          expected: int) -> int:
    argv = make_argv(req.src, req.outdir, req.targets, jobs=settings.jobs,
                     make_vars={**req.profile.make_vars(), **req.make_vars},
                     arch=req.profile.arch)
    counter = _StepCounter(progress, expected)
    offset = log_path.stat().st_size if log_path.exists() else 0
    try:
        proc.stream(argv, log_path=log_path, env=build_env(settings), on_line=counter)
    except CommandFailed as exc:
        lines = read_log_lines(log_path, offset)
        diags = [d for d in parse_diagnostics(lines, req.src) if d.kind != "warning"]
        shown = "\n  ".join(str(d) for d in diags[:10]) or "\n  ".join(make_errors(lines))
        raise BuildFailure(
            f"kernel build failed (make exit {exc.returncode}):\n  {shown}",
            hint=f"full log: {log_path}",
        ) from exc
    return counter.count


class _StepCounter:
    """Turns kbuild's "  CC      net/netfilter/core.o" lines into a status line."""

    def __init__(self, progress: Progress, expected: int) -> None:
        self.progress = progress
        self.expected = expected
        self.count = 0

    def __call__(self, line: str) -> None:
        m = _STEP.match(line)
        if not m:
            return
        if m["step"] in ("CC", "AS", "LD", "AR"):
            self.count += 1
        # The estimate is the last build's count: an incremental build that
        # outgrows it (another commit, a config change) shows the count alone.
        within = self.expected and self.count <= self.expected
        share = f"{self.count}/{self.expected}" if within else f"{self.count}"
        self.progress.status(f"{share} {m['step']} {m['what']}")


def build_module(source: Path, module: str, src: Path, outdir: Path, settings: Settings,
                 run_dir: Path, name: str) -> Path:
    """Build the out-of-tree module ``module`` (its Kbuild in ``source``)
    against the kernel in ``outdir``, in a copy at ``run_dir``/``name``.
    Returns the .ko; its log is ``run_dir``/``name``.log."""
    moddir = run_dir / name
    shutil.rmtree(moddir, ignore_errors=True)
    shutil.copytree(source, moddir, ignore=shutil.ignore_patterns("*.sh"))
    log = run_dir / f"{name}.log"
    try:
        proc.stream(make_argv(src, outdir, ["modules_prepare"], jobs=settings.jobs),
                    log_path=log, env=build_env(settings))
        # The kernel is built without "make modules", so there is no
        # Module.symvers: modpost cannot resolve the module's imports (an
        # error from 6.x on).  Without MODVERSIONS insmod resolves them.
        proc.stream(make_argv(src, outdir, ["modules"], jobs=settings.jobs,
                              make_vars={"M": str(moddir), "KBUILD_MODPOST_WARN": "1"}),
                    log_path=log, env=build_env(settings))
    except CommandFailed as exc:
        raise BuildFailure(f"module {module} did not build", hint=f"log: {log}") from exc
    return moddir / f"{module}.ko"
