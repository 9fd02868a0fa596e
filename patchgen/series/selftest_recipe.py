"""The selftest patch: the series' own kselftest, wired into the tree's
netfilter selftest directory: its Makefile (the helper built against the
tree's uapi headers), its ``.gitignore`` and its ``config`` fragment where
the directory has them.

The script and its C helper are ``templates/selftest/``; patchgen's own
runtime checks run the same two files on any tree (stages.guest_scripts).
"""

from __future__ import annotations

import re
from typing import Any

from patchgen.series.bpf_recipes import KCONFIG
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
    text = add_to_list(text, "TEST_GEN_FILES", helper, makefile)
    # The helper uses uapi (enum values, flags) that older system headers lack.
    view.write(makefile, add_target_flags(text, helper, "CFLAGS += $(KHDR_INCLUDES)", makefile))
    if view.exists(f"{directory}/.gitignore"):
        _sorted_add(view, f"{directory}/.gitignore", helper)
    added = []
    if view.exists(f"{directory}/config"):
        # merge_config.sh drops an option whose dependencies are off (as
        # in x86_64_defconfig): the fragment names them too.
        kconfig = ctx.runtime.kconfig
        options = [f"CONFIG_{symbol}=y"
                   for symbol in (kconfig, *kconfig_depends(view, KCONFIG, kconfig))]
        added = [option for option in (*options, *ctx.runtime.selftest_config)
                 if _config(view, f"{directory}/config", option)]
    return {"directory": directory, "config_added": added}


# Symbols of the architecture, which a config fragment does not set.
ARCH_SYMBOLS = frozenset({"64BIT"})


def kconfig_depends(view: TreeView, path: str, symbol: str) -> list[str]:
    """What ``config SYMBOL`` in ``path`` depends on: a conjunction of
    options, each of which a config fragment can set to y."""
    m = re.search(rf"^config {symbol}\n(?:[ \t]+.*\n|\n)*?[ \t]+depends on (.*)\n",
                  view.read(path), re.M)
    if m is None:
        raise RecipeError(f"{path}: config {symbol} has no 'depends on' line")
    terms = [t.strip() for t in m.group(1).split("&&")]
    if not all(re.fullmatch(r"[A-Z0-9_]+", t) for t in terms):
        raise RecipeError(f"{path}: config {symbol} depends on {m.group(1)!r}: only options "
                          "joined by && can go into the selftests' config fragment")
    return [t for t in terms if t not in ARCH_SYMBOLS]


def add_target_flags(text: str, target: str, flags: str, path: str) -> str:
    """``$(OUTPUT)/target: flags`` after lib.mk's include (which sets
    OUTPUT), after the target-specific lines already there."""
    lines = text.splitlines(keepends=True)
    include = next((i for i, line in enumerate(lines)
                    if re.fullmatch(r"include\s+\S*lib\.mk\s*", line)), None)
    if include is None:
        raise RecipeError(f"{path}: no 'include .../lib.mk' line")
    pos = include + 1
    for i in range(include + 1, len(lines)):
        if re.match(r"\$\(OUTPUT\)/\S+:", lines[i]):
            pos = i + 1
        elif lines[i].strip():
            break
    rule = f"$(OUTPUT)/{target}: {flags}\n"
    if pos == include + 1:  # the first: a blank line after the include
        rule = "\n" + rule
    return "".join([*lines[:pos], rule, *lines[pos:]])


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


def _sorted_add(view: TreeView, path: str, entry: str) -> None:
    """One line in a list file kept sorted (comments stay first)."""
    lines = view.read(path).splitlines(keepends=True)
    if entry + "\n" in lines:
        return
    pos = next((i for i, line in enumerate(lines)
                if not line.startswith("#") and line.strip() > entry), len(lines))
    view.write(path, "".join([*lines[:pos], entry + "\n", *lines[pos:]]))


def _config(view: TreeView, path: str, option: str) -> bool:
    """The directory's config fragment lists what its tests need, sorted;
    False if it has the option already."""
    lines = view.read(path).splitlines(keepends=True)
    if any(line.startswith(option.split("=")[0] + "=") for line in lines):
        return False
    pos = next((i for i, line in enumerate(lines) if line.strip() > option), len(lines))
    view.write(path, "".join([*lines[:pos], option + "\n", *lines[pos:]]))
    return True
