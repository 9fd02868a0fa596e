"""Obtain and prepare a kernel tree, then probe it.

Three sources:

* the embedded default and ``--version X``: Debian's ``linux-source-X``
  package, unpacked into the cache and made a git repository with a single,
  reproducible base commit;
* ``--tree PATH``: the user's own kernel git tree, used in place and never
  modified (patchgen works on its own branch, in its own worktree).

Preparing is all-or-nothing: a Debian tree is unpacked and committed in a
temporary directory and renamed into place only when complete, so an
interrupted run leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from patchgen import proc, space
from patchgen.errors import CommandFailed, InfraError, UserError
from patchgen.git import Git, Identity
from patchgen.probe import KernelVersion, TreeFacts, probe_tree, read_version
from patchgen.progress import Progress
from patchgen.settings import Settings

# The oldest tree the series can be generated for: it needs the netdev egress
# hook (5.16) and xtables' *_do_table used directly as hooks (5.17); we have
# only ever verified 6.1 and newer.
MIN_VERSION = KernelVersion(6, 1, 0)
BASE_BRANCH = "patchgen/base"
STAMP = ".patchgen-tree.json"
TREE_AUTHOR = Identity("patchgen", "patchgen@localhost")


@dataclass(frozen=True)
class TreeRequest:
    """Which tree: a known Debian series, or the user's own tree.

    Checked when it is made, before anything is downloaded or unpacked.
    """

    version: str | None = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.version is not None:
            _check_series(self.version)
        if self.path is not None:
            _check_directory(self.path)


@dataclass(frozen=True)
class DebianSource:
    series: str
    package: str
    tarball: str
    suites: tuple[str, ...]


# The origin of a --tree: "git:<path>@<branch>".
USER_ORIGIN = "git:"


@dataclass(frozen=True)
class Tree:
    """A prepared tree: a git repository and the commit the series is based on."""

    id: str
    repo: Path
    base: str
    origin: str
    facts: TreeFacts

    @property
    def version(self) -> KernelVersion:
        return self.facts.version

    @property
    def users(self) -> bool:
        """The user's own repository (--tree), whose branches may hold their
        work; not a Debian tree in patchgen's cache."""
        return self.origin.startswith(USER_ORIGIN)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "repo": str(self.repo),
            "base": self.base,
            "origin": self.origin,
            "facts": self.facts.as_dict(),
        }


def _trees_data() -> dict[str, Any]:
    return tomllib.loads(resources.files("patchgen").joinpath("data/trees.toml").read_text())


def known_sources() -> dict[str, DebianSource]:
    return {
        series: DebianSource(series, t["package"], t["tarball"], tuple(t["suites"]))
        for series, t in _trees_data()["tree"].items()
    }


def _landmarks() -> list[str]:
    return [str(f) for f in _trees_data()["landmarks"]]


def default_series() -> str:
    return str(_trees_data()["default"])


def _check_series(series: str) -> DebianSource:
    sources = known_sources()
    if series not in sources:
        known = ", ".join(sorted(sources))
        raise UserError(
            f"unknown kernel version {series!r}; known: {known}",
            hint="or give your own kernel git tree with --tree PATH",
        )
    return sources[series]


def _check_directory(path: Path) -> None:
    path = path.expanduser()
    if not path.exists():
        raise UserError(f"no such directory: {path.resolve()}")
    if not path.is_dir():
        raise UserError(f"not a directory: {path.resolve()}",
                        hint="--tree takes the top directory of a kernel git tree")


def prepare(req: TreeRequest, settings: Settings, progress: Progress) -> Tree:
    if req.path is not None:
        return _user_tree(req.path)
    # "is None", not "or": --version '' is a (bad) version, not the default.
    series = req.version if req.version is not None else default_series()
    return _debian_tree(_check_series(series), settings, progress)


# -- the user's tree ------------------------------------------------------------
def _user_tree(path: Path) -> Tree:
    _check_directory(path)
    path = path.expanduser().resolve()
    lacking = [f for f in _landmarks() if not (path / f).is_file()]
    if lacking:
        raise UserError(f"not a kernel tree (no {', '.join(lacking)}): {path}",
                        hint="--tree takes the top directory of a kernel git tree")
    version = read_version(path)
    if not Git.is_repo(path):
        raise UserError(
            f"not a git repository: {path}",
            hint="patchgen works on a new branch, so the tree must be a git repository",
        )
    git = Git(path)
    dirty = git.dirty_files()
    if dirty:
        shown = ", ".join(dirty[:3]) + (" ..." if len(dirty) > 3 else "")
        raise UserError(
            f"tree has uncommitted changes ({len(dirty)} files: {shown}): {path}",
            hint="commit or stash them first; patchgen never touches your working tree",
        )
    _check_version(version, path)
    branch = git.current_branch() or "detached HEAD"
    # The id names the worktree and build directories, where kbuild takes
    # no space or colon ("main directory cannot contain spaces nor colons").
    name = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
    tree_id = f"git-{name}-{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"
    return Tree(tree_id, path, git.head(), f"{USER_ORIGIN}{path}@{branch}", probe_tree(path))


def _check_version(version: KernelVersion, path: Path) -> None:
    if version < MIN_VERSION:
        raise UserError(
            f"kernel {version} in {path} is older than any tree patchgen supports "
            f"({MIN_VERSION.series} and newer)"
        )


# -- Debian's linux-source packages ------------------------------------------------
def _debian_tree(src: DebianSource, settings: Settings, progress: Progress) -> Tree:
    final = settings.trees / f"debian-{src.series}"
    stamp = final / STAMP
    if not stamp.exists():
        with progress.stage(f"tree: prepare Debian {src.package}"):
            _unpack_and_commit(src, final, settings, progress)
    meta = json.loads(stamp.read_text())
    facts = probe_tree(final)
    return Tree(
        f"debian-{facts.version}",
        final,
        meta["base"],
        f"debian:{src.package} {meta['package_version']}",
        facts,
    )


def _unpack_and_commit(src: DebianSource, final: Path, settings: Settings,
                       progress: Progress) -> None:
    tarball, pkg_version = _find_tarball(src, settings, progress)
    if final.exists():
        # A directory without a stamp is a leftover of an interrupted run.
        shutil.rmtree(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    step = f"unpacking {tarball.name}"
    need = space_needed(tarball)
    if need is not None:
        space.require(final.parent, need, step)
    tmp.mkdir(parents=True)
    try:
        progress.status(step)
        _unpack(tarball, tmp, need, step, src, final, pkg_version, progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# The unpacked files, and git's compressed copy of them (6.1: 1.36 GB of
# files, 0.54 GB of .git).
GIT_OVERHEAD = 0.5


def space_needed(tarball: Path) -> int | None:
    """Bytes the tree will take once unpacked and committed (None: unknown)."""
    if tarball.suffix != ".xz":
        return None
    res = proc.run(["xz", "--robot", "--list", str(tarball)], check=False)
    for line in res.stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "totals" and len(fields) > 4 and fields[4].isdigit():
            return int(int(fields[4]) * (1 + GIT_OVERHEAD))
    return None


def _unpack(tarball: Path, tmp: Path, need: int | None, step: str, src: DebianSource,
            final: Path, pkg_version: str, progress: Progress) -> None:
    """tar, then git; a full disk on the way is named as such."""
    try:
        _unpack_into(tarball, tmp, src, final, pkg_version, progress)
    except CommandFailed as exc:
        if space.is_exhausted(exc.stdout + exc.stderr):
            raise space.exhausted(final.parent, need, step) from exc
        raise
    except OSError as exc:
        if space.is_enospc(exc):
            raise space.exhausted(final.parent, need, step) from exc
        raise


def _unpack_into(tarball: Path, tmp: Path, src: DebianSource, final: Path, pkg_version: str,
                 progress: Progress) -> None:
    proc.run(["tar", "-xf", str(tarball), "-C", str(tmp)])
    roots = [p for p in tmp.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise InfraError(f"unexpected layout in {tarball}: {[p.name for p in roots]}")
    work = roots[0]
    read_version(work)
    progress.status("creating git repository (one base commit)")
    git = Git(work)
    git.init(initial_branch=BASE_BRANCH)
    git.run("config", "gc.auto", "0")
    git.run("config", "core.autocrlf", "false")
    # Force-add: the tarball is the source, whatever .gitignore says.
    git.run("add", "-A", "--force")
    date = f"@{int(tarball.stat().st_mtime)} +0000"
    message = (
        f"Linux {read_version(work)} from Debian {src.package} {pkg_version}\n\n"
        f"Unpacked from {tarball.name} by patchgen.\n"
    )
    base = git.commit_all(message, author=TREE_AUTHOR, date=date)
    stamp = {"base": base, "package": src.package, "package_version": pkg_version}
    (work / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    git.run("update-index", "--assume-unchanged", "--", STAMP, check=False)
    _exclude(work, STAMP)
    final.parent.mkdir(parents=True, exist_ok=True)
    work.rename(final)


def _exclude(repo: Path, name: str) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a") as f:
        f.write(f"/{name}\n")


def _find_tarball(src: DebianSource, settings: Settings, progress: Progress) -> tuple[Path, str]:
    installed = Path("/usr/src") / src.tarball
    if installed.exists():
        res = proc.run(["dpkg-query", "-W", "-f", "${Version}", src.package], check=False)
        version = res.stdout.strip() if res.returncode == 0 else "unknown"
        return installed, version
    deb = _download_deb(src, settings, progress)
    version = proc.run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
    unpacked = settings.downloads / f"{src.package}_{version}"
    tarball = unpacked / "usr" / "src" / src.tarball
    if not tarball.exists():
        tmp = unpacked.with_name(unpacked.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        proc.run(["dpkg-deb", "-x", str(deb), str(tmp)])
        shutil.rmtree(unpacked, ignore_errors=True)
        tmp.rename(unpacked)
    return tarball, version


def apt_sources_line(suites: tuple[str, ...], mirror: str) -> str:
    return "".join(f"deb {mirror} {suite} main\n" for suite in suites)


def apt_argv(apt_dir: Path, *args: str) -> list[str]:
    """apt-get with a private configuration: the system's sources stay untouched."""
    return [
        "apt-get", "-q",
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/nonexistent",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", f"Dir::Cache::Archives={apt_dir / 'archives'}",
        "-o", "APT::Sandbox::User=root",
        *args,
    ]


def _download_deb(src: DebianSource, settings: Settings, progress: Progress) -> Path:
    apt_dir = settings.downloads / f"apt-{src.series}"
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("PATCHGEN_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    (apt_dir / "sources.list").write_text(apt_sources_line(src.suites, mirror))
    progress.status(f"apt-get download {src.package} ({', '.join(src.suites)})")
    proc.require("apt-get")
    proc.run(apt_argv(apt_dir, "update"), timeout=600)
    for old in apt_dir.glob(f"{src.package}_*.deb"):
        old.unlink()
    proc.run(apt_argv(apt_dir, "download", src.package), cwd=apt_dir, timeout=1800)
    debs = sorted(apt_dir.glob(f"{src.package}_*.deb"))
    if not debs:
        raise InfraError(f"apt-get download {src.package} produced no .deb in {apt_dir}")
    return debs[-1]


# -- the series' branch ------------------------------------------------------------
def series_tip(tree: Tree, branch: str, *, named_with: str = "--branch") -> str:
    """The tip of the series' branch, with commits over the tree's base;
    UserError saying what to do (before any work) for a branch without them.
    ``named_with``: the option that names another branch ("" for none)."""
    git = Git(tree.repo)
    other = f", or name the series' branch with {named_with}" if named_with else ""
    try:
        tip = git.rev_parse(branch)
    except UserError as exc:
        raise UserError(exc.message, hint=f"run patchgen generate first{other}") from None
    if not git.log_shas(f"{tree.base}..{tip}"):
        raise UserError(f"branch {branch} has no commits on top of {tree.base[:12]}",
                        hint="run patchgen generate first")
    return tip


# -- worktrees ----------------------------------------------------------------------
def worktree(tree: Tree, settings: Settings) -> Path:
    """patchgen's own checkout of ``tree`` (created on first use).

    Builds and per-patch checks happen here, so the user's checkout (and a
    Debian tree's main checkout) never change.
    """
    where = settings.worktrees / tree.id
    git = Git(tree.repo)
    if where.exists() and Git.is_repo(where) and not git.worktree_locked(where):
        return where
    # Locked: a 'worktree add' that never finished its checkout (add_worktree
    # removes it and starts again).
    if not git.worktree_locked(where):
        shutil.rmtree(where, ignore_errors=True)
    where.parent.mkdir(parents=True, exist_ok=True)
    git.run("worktree", "prune")
    git.add_worktree(where, tree.base)
    return where


def checkout(where: Path, rev: str) -> None:
    Git(where).checkout_detached(rev)
