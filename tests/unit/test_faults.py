"""Injected faults are edits of the rendered generator, never template branches.

The C a user gets comes from templates that know nothing of faults;
``--inject-fault`` edits the rendered file at an anchor, and an anchor
that is not there is an error (a fault that is not injected proves
nothing).
"""

from __future__ import annotations

from pathlib import Path

import jinja2.meta
import pytest

from patchgen.errors import UserError
from patchgen.series import faults
from patchgen.series.render import Renderer
from patchgen.series.view import RecipeError
from tests.series_helpers import plan_for

TEMPLATES = Path(__file__).parent.parent.parent / "templates"
GENERATOR = "net/netfilter/nf_hook_bpf.c"


def _variables(path: Path) -> set[str]:
    return jinja2.meta.find_undeclared_variables(Renderer(TEMPLATES).env.parse(path.read_text()))


def test_templates_carry_no_fault_scaffolding() -> None:
    for path in sorted(TEMPLATES.rglob("*.j2")):
        text = path.read_text()
        assert "FAULT INJECTED" not in text, path.name
        assert "fault" not in _variables(path), path.name


def test_the_generator_template_knows_nothing_of_later_patches() -> None:
    """Patch 6 renders the generator; patch 9 adds the cache at its anchors."""
    assert _variables(TEMPLATES / "c" / "nf_hook_bpf.c.j2") == {
        "drop", "max_hooks", "sysctl_sentinel", "own_walks", "walk_headers", "unbound_wq",
        "kmalloc_obj"}


@pytest.mark.parametrize("name", faults.NAMES)
def test_a_fault_whose_anchor_is_missing_fails_loudly(name: str) -> None:
    with pytest.raises(RecipeError, match=f"--inject-fault {name}: .*found 0 times"):
        faults.FAULTS[name].apply("int x;\n", GENERATOR)


def test_a_fault_whose_anchor_is_ambiguous_fails_loudly() -> None:
    fault = faults.FAULTS["build"]
    with pytest.raises(RecipeError, match="found 2 times"):
        fault.apply(fault.anchor + "\n" + fault.anchor + "\n", GENERATOR)


def test_names_are_what_the_cli_offers() -> None:
    assert faults.NAMES == ("skip-hook", "verdict", "build")


@pytest.mark.parametrize("name", faults.NAMES)
def test_a_fault_stays_in_the_generator_through_the_cache_patch(
        fakenet: Path, tmp_path: Path, name: str) -> None:
    """Patch 9 edits the generator by structure, so it applies on a faulted file
    as it does on a clean one, and the fault is the only difference."""
    clean = plan_for(fakenet, tmp_path / "c1")
    broken = plan_for(fakenet, tmp_path / "c2", fault=name)
    marker = f"FAULT INJECTED (patchgen generate --inject-fault {name})"
    for number in (6, 9):
        before = next(c.new for c in clean.patches[number - 1].changes if c.path == GENERATOR)
        after = next(c.new for c in broken.patches[number - 1].changes if c.path == GENERATOR)
        assert marker in after and marker not in before
        assert faults.FAULTS[name].apply(before, GENERATOR) == after
    assert "nf_hook_bpf_cached" in after


@pytest.mark.parametrize("name", faults.NAMES)
def test_a_fault_that_upto_leaves_out_is_refused(fakenet: Path, tmp_path: Path,
                                                 name: str) -> None:
    """--upto 3 with a fault made a good series, exit 0: a fault run that
    proves nothing, silently."""
    with pytest.raises(UserError, match=rf"--inject-fault {name}: .* no patch up to 3 adds"):
        plan_for(fakenet, tmp_path / "c", upto=3, fault=name)
