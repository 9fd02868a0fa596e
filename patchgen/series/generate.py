"""Compute the series from a tree, and commit it to a branch.

``plan()`` runs every recipe on an in-memory view of the tree and renders
each commit message; nothing is written.  ``commit()`` turns the plan into
commits with git plumbing (a private index, ``hash-object``,
``commit-tree``) and moves the branch only once the whole series exists,
so an interrupted run leaves no half-made series and never touches any
checkout.  A second run that yields the same patches keeps the branch as
it is.
"""

from __future__ import annotations

import contextlib
import difflib
import shutil
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchgen import proc
from patchgen.csrc import CFile, CSyntaxError
from patchgen.errors import UserError
from patchgen.git import Git, Identity, identity_env
from patchgen.series import faults
from patchgen.series.context import Context, Runtime
from patchgen.series.recipes import RECIPES
from patchgen.series.render import Renderer
from patchgen.series.view import FileChange, RecipeError, TreeView, changes_between
from patchgen.tree import Tree


@dataclass(frozen=True)
class PatchSpec:
    number: int
    slug: str
    recipe: str
    message: str
    origin: str = "new"  # "rfc": derived from a patch of the RFC posting
    changes: tuple[str, ...] = ()  # since the RFC, for the cover letter


@dataclass(frozen=True)
class Origin:
    """The posting the series derives from: its author and where it is."""

    author: Identity
    link: str
    dropped: tuple[str, ...] = ()  # its patches this series leaves out, and why


@dataclass(frozen=True)
class PrepDefaults:
    """series.toml [prep]: recipients besides get_maintainer.pl's, the subject prefix."""

    prefix: str | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeriesSpec:
    name: str
    branch: str
    patches: tuple[PatchSpec, ...]
    runtime: Runtime
    origin: Origin | None = None
    prep: PrepDefaults = PrepDefaults()


ORIGINS = ("rfc", "new")


def load_spec(templates_dir: Path) -> SeriesSpec:
    data = tomllib.loads((templates_dir / "series.toml").read_text())
    patches = tuple(PatchSpec(i, p["slug"], p["recipe"], p["message"], p.get("origin", "new"),
                              tuple(p.get("changes", ())))
                    for i, p in enumerate(data["patch"], 1))
    for p in patches:
        if p.recipe not in RECIPES:
            raise ValueError(f"series.toml: patch {p.number} names unknown recipe {p.recipe!r}")
        if p.origin not in ORIGINS:
            raise ValueError(f"series.toml: patch {p.number} has origin {p.origin!r}; "
                             f"known: {', '.join(ORIGINS)}")
    rfc = data.get("rfc")
    origin = Origin(parse_identity(rfc["author"]), rfc["link"],
                    tuple(rfc.get("dropped", ()))) if rfc else None
    if origin is None and any(p.origin == "rfc" for p in patches):
        raise ValueError("series.toml: patches derived from the RFC but no [rfc] table")
    if "runtime" not in data:
        raise ValueError("series.toml: no [runtime] table (the switch, the generator, the "
                         "guest checks)")
    try:
        runtime = Runtime(**data["runtime"])
    except TypeError as exc:
        raise ValueError(f"series.toml [runtime]: {exc}") from exc
    prep = data.get("prep", {})
    defaults = PrepDefaults(prep.get("prefix"), tuple(prep.get("to", ())),
                            tuple(prep.get("cc", ())))
    return SeriesSpec(data["series"]["name"], data["series"]["branch"], patches, runtime,
                      origin, defaults)


def since_rfc(spec: SeriesSpec) -> dict[str, Any]:
    """What the cover letter says about the RFC: the link, per patch what
    changed (or that it is new), and the RFC patches left out."""
    if spec.origin is None:
        return {}
    return {"link": spec.origin.link, "dropped": list(spec.origin.dropped),
            "patches": [{"number": p.number, "new": p.origin != "rfc", "changes": list(p.changes)}
                        for p in spec.patches],
            "count": len(spec.patches)}


def patch_author(spec: SeriesSpec, patch: PatchSpec, user: Identity) -> Identity:
    """Patches derived from the RFC keep its author; new ones are the user's."""
    if patch.origin == "rfc" and spec.origin is not None:
        return spec.origin.author
    return user


def trailers(spec: SeriesSpec, patch: PatchSpec, user: Identity) -> list[str]:
    """Link to the RFC and the sign-off chain: the RFC's author, then the user."""
    out = []
    if patch.origin == "rfc" and spec.origin is not None:
        out += [f"Link: {spec.origin.link}", f"Signed-off-by: {spec.origin.author}"]
    mine = f"Signed-off-by: {user}"
    if mine not in out:
        out.append(mine)
    return out


@dataclass(frozen=True)
class PatchResult:
    spec: PatchSpec
    subject: str
    message: str  # complete commit message, subject first, trailers last
    changes: tuple[FileChange, ...]
    functions: dict[str, list[str]]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    author: Identity | None = None  # None: the series' author (the user)

    def diffstat(self) -> list[tuple[str, int, int]]:
        out = []
        for c in self.changes:
            old = (c.old or "").splitlines()
            new = c.new.splitlines()
            added = removed = 0
            for line in difflib.unified_diff(old, new, lineterm="", n=0):
                if line.startswith("+") and not line.startswith("+++"):
                    added += 1
                elif line.startswith("-") and not line.startswith("---"):
                    removed += 1
            out.append((c.path, added, removed))
        return out


@dataclass(frozen=True)
class SeriesPlan:
    tree: Tree
    spec: SeriesSpec
    patches: tuple[PatchResult, ...]
    author: Identity
    extra: dict[str, Any] = field(default_factory=dict)


def plan(tree: Tree, renderer: Renderer, spec: SeriesSpec, author: Identity,
         upto: int | None = None, fault: str | None = None) -> SeriesPlan:
    if fault is not None and fault not in faults.NAMES:
        raise UserError(f"unknown fault {fault!r}; known: {', '.join(faults.NAMES)}")
    view = TreeView(tree.repo)
    results = []
    if upto is not None and not 1 <= upto <= len(spec.patches):
        raise UserError(f"--upto {upto}: the series has patches 1 to {len(spec.patches)}")
    injected = False
    for p in spec.patches[: upto or len(spec.patches)]:
        ctx = Context(view, tree.facts, renderer, str(author), spec.runtime)
        before = view.snapshot()
        try:
            variables = RECIPES[p.recipe](ctx)
            if fault is not None:
                injected |= faults.inject(fault, spec.runtime.generator, before, view)
        except (RecipeError, CSyntaxError) as exc:
            raise UserError(f"patch {p.number} ({p.slug}) cannot be made for this tree: {exc}",
                            hint="the tree differs from what this recipe knows; see the "
                                 "message for what was expected where") from exc
        changes = tuple(changes_between(before, view))
        if not changes:
            raise UserError(f"patch {p.number} ({p.slug}) changes nothing in this tree")
        body = renderer.message(p.message, facts=tree.facts, **variables).rstrip("\n")
        message = body + "\n\n" + "\n".join(trailers(spec, p, author)) + "\n"
        subject = message.split("\n", 1)[0]
        results.append(PatchResult(p, subject, message, changes, _functions(changes),
                                   tuple(ctx.notes), tuple(ctx.warnings),
                                   patch_author(spec, p, author)))
    if fault is not None and not injected:
        # A fault run without its fault would pass, and prove nothing.
        raise UserError(f"--inject-fault {fault}: the fault goes into {spec.runtime.generator}, "
                        f"and no patch up to {len(results)} adds it",
                        hint="leave out --upto, or give one at or past the patch that adds it")
    return SeriesPlan(tree, spec, tuple(results), author)


def _functions(changes: tuple[FileChange, ...]) -> dict[str, list[str]]:
    """Per file, the functions (or file scope) whose lines a change touches."""
    out: dict[str, list[str]] = {}
    for c in changes:
        new_lines = c.new.splitlines(keepends=True)
        touched: set[int] = set()
        matcher = difflib.SequenceMatcher(None, (c.old or "").splitlines(keepends=True),
                                          new_lines, autojunk=False)
        for tag, _, _, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                touched.update(range(j1, max(j2, j1 + 1)))
        offsets = [0]
        for line in new_lines:
            offsets.append(offsets[-1] + len(line))
        names: list[str] = []
        try:
            fns = CFile.parse(c.path, c.new).functions() if c.path.endswith((".c", ".h")) else []
        except CSyntaxError:
            fns = []
        for line_no in sorted(touched):
            pos = offsets[min(line_no, len(offsets) - 1)]
            name = next((f.name for f in fns if f.start <= pos < f.end), "(file scope)")
            if name not in names:
                names.append(name)
        out[c.path] = names
    return out


# -- committing -------------------------------------------------------------------------
@dataclass(frozen=True)
class Committed:
    branch: str
    base: str
    commits: tuple[str, ...]
    reused: bool  # the branch already held exactly this series


# The reflog message of every branch update generate makes: how it knows a
# branch it may replace from one that holds someone's work.
WRITTEN = "patchgen generate"


def commit(series: SeriesPlan, branch: str, date: str, keep_dates: bool = False) -> Committed:
    """Commit the series onto ``branch``; ``keep_dates``: the date was chosen by
    the user, so a series that differs only in its dates is a new series."""
    git = Git(series.tree.repo)
    user = series.author
    commits: list[str] = []
    parent = series.tree.base
    with private_dir("patchgen-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(tmp / "index")}
        git.run("read-tree", parent, env=env)
        for patch in series.patches:
            for change in patch.changes:
                blob = git.run("hash-object", "-w", "--stdin", "--path", change.path,
                               input=change.new).stdout.strip()
                mode = "100755" if change.executable else _mode(git, change.path, env)
                git.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{change.path}",
                        env=env)
            tree_sha = git.run("write-tree", env=env).stdout.strip()
            ident = identity_env(author=patch.author or user, committer=user, date=date)
            parent = git.run("commit-tree", tree_sha, "-p", parent, "-F", "-",
                             env={**env, **ident}, input=patch.message).stdout.strip()
            commits.append(parent)
    ref = f"refs/heads/{branch}"
    old = git.run("rev-parse", "--verify", "--quiet", ref, check=False).stdout.strip()
    if old and _same_series(git, series.tree.base, old, commits, keep_dates):
        kept = git.log_shas(f"{series.tree.base}..{old}")
        return Committed(branch, series.tree.base, tuple(kept), True)
    git.update_ref(ref, commits[-1], message=WRITTEN)
    return Committed(branch, series.tree.base, tuple(commits), False)


def private_dir(prefix: str) -> contextlib.AbstractContextManager[Path]:
    """A temporary directory that a Ctrl-C cannot leave behind (see proc.undivided)."""
    return proc.undivided(lambda: Path(tempfile.mkdtemp(prefix=prefix)),
                          lambda tmp: shutil.rmtree(tmp, ignore_errors=True))


def _mode(git: Git, path: str, env: dict[str, str]) -> str:
    out = git.run("ls-files", "-s", "--", path, env=env).stdout.split()
    return out[0] if out else "100644"


def _same_series(git: Git, base: str, old_tip: str, new: list[str], dates: bool) -> bool:
    """Same trees, messages and authors (and dates if asked), commit by commit."""
    old = git.log_shas(f"{base}..{old_tip}")
    if len(old) != len(new):
        return False
    fmt = "%T%n%an <%ae>%n" + ("%aI%n" if dates else "") + "%B"
    return all(git.out("show", "-s", f"--format={fmt}", a) == git.out("show", "-s",
                                                                       f"--format={fmt}", b)
               for a, b in zip(old, new, strict=True))


def format_plan(series: SeriesPlan, verbose: bool = False) -> str:
    """What each patch would change: files (+/-) and functions, then notes."""
    out = [f"Series for {series.tree.id} (base {series.tree.base[:12]}), "
           f"author {series.author}:"]
    for p in series.patches:
        out.append("")
        out.append(f"[{p.spec.number}/{len(series.spec.patches)}] {p.subject}")
        for path, added, removed in p.diffstat():
            funcs = ", ".join(p.functions.get(path, []))
            out.append(f"    {path} (+{added}/-{removed}): {funcs}")
        if p.notes:
            shown = p.notes if verbose else p.notes[:0]
            out.append(f"    {len(p.notes)} notes" + ("" if verbose else " (--verbose shows them)"))
            out += [f"      {n}" for n in shown]
        out += [f"    warning: {w}" for w in p.warnings]
    return "\n".join(out)


def parse_identity(text: str) -> Identity:
    import re

    # One name (no <, >, or control characters) and one address.
    m = re.fullmatch(r"\s*([^<>\x00-\x1f\x7f]+?)\s*<([^<>\s,]+@[^<>\s,]+)>\s*", text)
    if m is None:
        raise UserError(f"--author must look like 'Name <email>', got {text!r}")
    return Identity(m.group(1), m.group(2))


# Who signs a local test run off when the machine has no usable identity
# (README command 1 on a fresh machine): never accepted by prep.
LOCAL_RUN = Identity("patchgen test run", "test-run@patchgen.invalid")


def identity_for(tree: Tree, explicit: str | None, *, local_ok: bool = False) -> Identity:
    """--author, else git's committer identity: the user who signs off.

    A missing or placeholder identity is an error before anything is
    written; with ``local_ok`` (a test run that sends nothing) it is
    LOCAL_RUN instead, which the caller says and prep refuses.
    """
    from patchgen.identity import GIT_HINT, committer_identity, is_placeholder_email

    if explicit:
        ident = parse_identity(explicit)
        if is_placeholder_email(ident.email):
            raise UserError(f"--author {ident} is a placeholder address", hint=GIT_HINT)
        return ident
    try:
        return committer_identity(Git(tree.repo))
    except UserError:
        if local_ok:
            return LOCAL_RUN
        raise
