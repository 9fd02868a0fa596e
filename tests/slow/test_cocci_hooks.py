"""An independent check of hook discovery: Coccinelle's list against the plan's.

ci/nf_hooks.cocci lists every function netfilter runs as a hook in a real
tree (registered in a struct nf_hook_ops, by xt_hook_ops_alloc(), in an
nft_chain_type or nf_flowtable_type, or called by a hook); patch 4 of
``generate --plan`` converts a set of functions, one note per definition or
prototype.  The two sets must be the same: a function in only one of them
is either a hook the series leaves unconverted or one it converts wrongly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.slow.conftest import ROOT, patchgen

pytestmark = pytest.mark.slow
CACHE = Path(os.environ.get("PATCHGEN_CACHE", Path.home() / ".cache" / "patchgen"))
TREE = CACHE / "trees" / "debian-6.1"
SEMANTIC_PATCH = ROOT / "ci" / "nf_hooks.cocci"
# Every rule of the semantic patch needs one of these names in the file:
# spatch reads these ~80 files instead of the tree (seconds, not minutes).
NAMES = ("nf_hook_state", "nf_hook_ops", "xt_hook_ops_alloc", "nft_chain_type",
         "nf_flowtable_type")


def planned_hooks() -> set[str]:
    """The functions patch 4 converts: its notes are "name: path:line: why"."""
    res = patchgen("generate", "--plan", "--verbose")
    assert res.returncode == 0, res.stderr
    patch4 = res.stdout.split("\n[4/", 1)[1].split("\n[5/", 1)[0]
    return set(re.findall(r"^ {6}(\w+): \S+:\d+: ", patch4, re.M))


def cocci_hooks(tree: Path) -> set[str]:
    assert shutil.which("spatch"), "spatch is missing (Debian's coccinelle): run ci/setup"
    grep = subprocess.run(["git", "-C", str(tree), "grep", "-l", "-w",
                           *(a for n in NAMES for a in ("-e", n)), "--", "*.c", "*.h"],
                          capture_output=True, text=True, check=True)
    res = subprocess.run(["spatch", "--sp-file", str(SEMANTIC_PATCH), "--jobs", "1",
                          "--very-quiet", "--no-includes", *grep.stdout.split()],
                         cwd=tree, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split())


def test_coccinelle_finds_the_hooks_the_plan_converts() -> None:
    planned = planned_hooks()  # first: it prepares the tree if need be
    found = cocci_hooks(TREE)
    assert len(planned) > 50
    assert found == planned, (f"only Coccinelle: {sorted(found - planned)}; "
                              f"only the plan: {sorted(planned - found)}")
