"""The selftest patch: the series' own kselftest, wired into the tree's
netfilter selftest directory (its Makefile, and its ``config`` fragment
where the directory has one).

The script and its C helper are ``templates/selftest/``; patchgen's own
runtime checks run the same two files on any tree (stages.guest_scripts).
"""

from __future__ import annotations

import re
from typing import Any

from patchgen.series.context import Context
from patchgen.series.view import RecipeError, TreeView


def selftest(ctx: Context) -> dict[str, Any]:
    directory = ctx.facts.selftests_dir
    if directory is None:
        raise RecipeError("no netfilter selftest directory in this tree")
    view, script, helper = ctx.view, ctx.runtime.selftest, ctx.runtime.helper
    for name in (script, f"{helper}.c"):
        if view.exists(f"{directory}/{name}"):
            raise RecipeError(f"{directory}/{name} exists already")
    # Copied as they are (not Jinja templates: shell's ${#a[@]} would open a
    # Jinja comment).
    source = ctx.renderer.dir / "selftest"
    view.write(f"{directory}/{script}", (source / script).read_text(), executable=True)
    view.write(f"{directory}/{helper}.c", (source / f"{helper}.c").read_text())
    makefile = f"{directory}/Makefile"
    text = add_to_list(view.read(makefile), "TEST_PROGS", script, makefile)
    view.write(makefile, add_to_list(text, "TEST_GEN_FILES", helper, makefile))
    if view.exists(f"{directory}/config"):
        _config(view, f"{directory}/config", f"CONFIG_{ctx.runtime.kconfig}=y")
    return {"directory": directory}


def add_to_list(text: str, var: str, item: str, path: str) -> str:
    """Add ``item`` to make variable ``var`` the way the Makefile spells its lists.

    Three spellings are known: one item per line ending with "# end of VAR"
    (kept sorted), "VAR += item" lines, and one "VAR := a b \\" assignment
    (followed by a "VAR += item" line).
    """
    lines = text.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if line.strip() == f"# end of {var}"), None)
    if end is not None:
        start = next(i for i in range(end, -1, -1) if re.match(rf"{var}\s*:?=", lines[i]))
        items = range(start + 1, end)
        pos = next((i for i in items if lines[i].strip().rstrip("\\").strip() > item), end)
        return "".join([*lines[:pos], f"\t{item} \\\n", *lines[pos:]])
    assigns = [i for i, line in enumerate(lines) if re.match(rf"{var}\s*(:|\+)?=", line)]
    if not assigns:
        raise RecipeError(f"{path}: no {var} list to add {item} to")
    last = assigns[-1]
    while lines[last].rstrip("\n").endswith("\\"):
        last += 1
    return "".join([*lines[:last + 1], f"{var} += {item}\n", *lines[last + 1:]])


def _config(view: TreeView, path: str, option: str) -> None:
    """The directory's config fragment lists what its tests need, sorted."""
    lines = view.read(path).splitlines(keepends=True)
    if any(line.startswith(option.split("=")[0] + "=") for line in lines):
        return
    pos = next((i for i, line in enumerate(lines) if line.strip() > option), len(lines))
    view.write(path, "".join([*lines[:pos], option + "\n", *lines[pos:]]))
