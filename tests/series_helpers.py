"""Render a computed series as text, for golden comparison."""

from __future__ import annotations

import difflib
from pathlib import Path

from patchgen import settings
from patchgen.git import Identity
from patchgen.progress import null_progress
from patchgen.series import generate
from patchgen.series.render import Renderer
from patchgen.tree import TreeRequest, prepare

AUTHOR = Identity("Test User", "test@example.org")


def plan_for(tree_path: Path, cache: Path, upto: int | None = None,
             fault: str | None = None) -> generate.SeriesPlan:
    s = settings.load(cache)
    tree = prepare(TreeRequest(path=tree_path), s, null_progress())
    spec = generate.load_spec(s.templates_dir)
    return generate.plan(tree, Renderer(s.templates_dir), spec, AUTHOR, upto, fault)


def patch_text(p: generate.PatchResult) -> str:
    out = [p.message.rstrip("\n"), "---"]
    for c in p.changes:
        out += list(difflib.unified_diff((c.old or "").splitlines(), c.new.splitlines(),
                                         f"a/{c.path}", f"b/{c.path}", lineterm=""))
    return "\n".join(out) + "\n"
