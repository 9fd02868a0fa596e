"""What every recipe gets (Context), and the series' runtime particulars.

Its own module so that recipes.py, which maps names to recipes, and the
recipe modules it imports (onearg, bpf_recipes, selftest_recipe) all depend
on it and not on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patchgen.probe import TreeFacts
from patchgen.series.hooks import Inventory
from patchgen.series.render import Renderer
from patchgen.series.view import TreeView


@dataclass(frozen=True)
class Runtime:
    """What the series adds that generic stages need by name (series.toml [runtime])."""

    switch: str  # sysctl: 1 runs the generated programs, 0 nf_hook_slow()
    generator: str  # the file of the generator: a commit with it has the switch
    kconfig: str  # the symbol that builds the generator
    checks: str  # patchgen's guest checks, under selftests/guest/
    selftest: str  # the series' selftest script, under templates/selftest/
    helper: str  # its C helper, templates/selftest/<helper>.c
    helper_env: str  # where the selftest finds the helper built on the host
    # A module of hook functions the guest checks load and unload
    # (selftests/guest/module/<checks_module>.c, built on the host against
    # the kernel under test), and where they find it.
    checks_module: str = ""
    checks_module_env: str = ""
    # What the selftest uses, for the selftest directory's config fragment
    # (an option the fragment has already, at any value, stays as it is).
    selftest_config: Sequence[str] = ()
    # Guest-check cases that test what a later patch adds: the text the
    # generator file holds once that patch is in (see unmet_needs()).
    needs: Mapping[str, str] = field(default_factory=dict)

    @property
    def switch_name(self) -> str:
        return self.switch.rsplit(".", 1)[1]

    @property
    def switch_file(self) -> str:
        return "/proc/sys/" + self.switch.replace(".", "/")


@dataclass
class Context:
    view: TreeView
    facts: TreeFacts
    renderer: Renderer
    author: str
    runtime: Runtime  # the names series.toml gives the generator, its switch, its selftest
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inventory: Inventory | None = None


Recipe = Callable[[Context], dict[str, Any]]
