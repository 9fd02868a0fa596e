"""Per-patch recipes: each computes one patch of the series from the tree.

A recipe gets a ``Context`` (the tree as earlier patches left it, the
probed facts, the template renderer) and edits the view; it returns the
variables its commit-message template needs.  Recipes find what they
change by structure (the function, struct or call), check that the tree
looks the way the patch expects, and raise ``RecipeError`` otherwise.
Tree differences come from ``TreeFacts``, never from version numbers.
"""

from __future__ import annotations

import re
from typing import Any

from patchgen.csrc import Call, CFile, Edit, Function
from patchgen.series import bpf_recipes, cedit, onearg, selftest_recipe
from patchgen.series.context import Context, Recipe
from patchgen.series.hooks import check_convertible, discover
from patchgen.series.view import RecipeError, TreeView

NETFILTER_H = "include/linux/netfilter.h"
NF_QUEUE_H = "include/net/netfilter/nf_queue.h"
CORE_C = "net/netfilter/core.c"
NF_QUEUE_C = "net/netfilter/nf_queue.c"
NAT_CORE_C = "net/netfilter/nf_nat_core.c"
NAT_HELPER = "nf_nat_inet_run_hooks"




def where(cf: CFile, offset: int) -> str:
    return f"{cf.path}:{cf.line_of(offset)}"



def _calls_everywhere(view: TreeView, name: str) -> list[tuple[CFile, Call]]:
    out = []
    for path in view.grep(name, word=True):
        cf = view.parse(path)
        out += [(cf, c) for c in cf.calls(name)]
    return out


def _store_index_then_call(cf: CFile, call: Call, state_arg: str, index_arg: str,
                           drop: int) -> list[Edit]:
    """``f(..., state, index, ...)`` -> ``state.hook_index = index; f(..., state, ...)``."""
    ref = cedit.StateRef(state_arg)
    return [cedit.insert_before_statement(cf, call.name_start,
                                          [f"{ref.member('hook_index')} = {index_arg};"]),
            cedit.drop_item(call.args, drop, f"{where(cf, call.name_start)} {call.name}()")]


# -- patch 1 -------------------------------------------------------------------------
def queue_index(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    cf = view.parse(NETFILTER_H)
    pf = cedit.member_line(cf, "nf_hook_state", r"u8\s+pf;")
    indent = cf.indent_at(pf[0])
    view.edit(NETFILTER_H, [Edit(pf[1], pf[1], f"{indent}u16 hook_index;\n")])

    cf = view.parse(NF_QUEUE_H)
    proto = cedit.require_function(view, NF_QUEUE_H, "nf_queue", definition=False)
    index_pos = _param_index(proto, "index", NF_QUEUE_H)
    view.edit(NF_QUEUE_H, [
        cedit.remove_member(cf, "nf_queue_entry", r"unsigned int\s+hook_index;"),
        cedit.reflow_params(cf, proto, [p.text for i, p in enumerate(proto.params)
                                        if i != index_pos]),
    ])

    _drop_queue_index_param(view)
    sites = _store_index_at_queue_calls(view)
    _entry_index_reads(view)
    _assert_hook_count(view)
    return {"call_sites": sites}


def _param_index(fn: Function, name: str, path: str) -> int:
    for i, p in enumerate(fn.params):
        if p.name == name:
            return i
    raise RecipeError(f"{path}: {fn.name}() has no parameter {name!r}")


def _drop_queue_index_param(view: TreeView) -> None:
    """nf_queue() and __nf_queue() lose the index; __nf_queue() stops copying it."""
    cf = view.parse(NF_QUEUE_C)
    edits = []
    inner = cedit.require_function(view, NF_QUEUE_C, "__nf_queue")
    inner_index = _param_index(inner, "index", NF_QUEUE_C)
    edits.append(cedit.reflow_params(cf, inner, [p.text for i, p in enumerate(inner.params)
                                                 if i != inner_index]))
    line = cedit.statement_after(cf, inner, r"\.hook_index\s*=\s*index,")
    edits.append(Edit(line[0], line[1], ""))
    outer = cedit.require_function(view, NF_QUEUE_C, "nf_queue")
    outer_index = _param_index(outer, "index", NF_QUEUE_C)
    edits.append(cedit.reflow_params(cf, outer, [p.text for i, p in enumerate(outer.params)
                                                 if i != outer_index]))
    calls = cf.calls("__nf_queue", within=cedit.body(outer))
    if len(calls) != 1 or calls[0].arg_texts[inner_index] != "index":
        raise RecipeError(f"{NF_QUEUE_C}: nf_queue() should pass index to __nf_queue() once")
    edits.append(cedit.drop_item(calls[0].args, inner_index, "__nf_queue()"))
    view.edit(NF_QUEUE_C, edits)


def _store_index_at_queue_calls(view: TreeView) -> list[str]:
    sites = []
    by_file: dict[str, list[Edit]] = {}
    for cf, call in _calls_everywhere(view, "nf_queue"):
        if len(call.args) != 4:
            continue  # already converted, or someone else's nf_queue
        state, index = call.arg_texts[1], call.arg_texts[2]
        by_file.setdefault(cf.path, []).extend(
            _store_index_then_call(cf, call, state, index, 2))
        fn = cf.enclosing(call.name_start)
        sites.append(f"{fn.name if fn else '?'}() in {cf.path}")
    if not sites:
        raise RecipeError("no nf_queue() call with an index argument found")
    for path, edits in by_file.items():
        view.edit(path, edits)
    return sites


def _entry_index_reads(view: TreeView) -> None:
    """``entry->hook_index`` (struct nf_queue_entry) becomes ``entry->state.hook_index``."""
    for path in view.grep("hook_index", word=True):
        cf = view.parse(path)
        edits = []
        for i, tok in enumerate(cf.tokens):
            if tok.text != "hook_index" or i < 2 or cf.tokens[i - 1].text != "->":
                continue
            base = cf.tokens[i - 2].text
            fn = cf.enclosing(tok.start)
            if fn is None:
                continue
            scope = cf.code[fn.start:fn.body_close]
            if re.search(rf"struct nf_queue_entry\s*\*\s*{re.escape(base)}\b", scope):
                edits.append(Edit(tok.start, tok.end, "state.hook_index"))
        view.edit(path, edits)


def _assert_hook_count(view: TreeView) -> None:
    cf = view.parse(CORE_C)
    if cf.define("MAX_HOOK_COUNT") is None:
        raise RecipeError(f"{CORE_C}: MAX_HOOK_COUNT is not defined")
    init = cedit.require_function(view, CORE_C, "netfilter_init")
    view.edit(CORE_C, [_first_statement(cf, init, ["BUILD_BUG_ON(MAX_HOOK_COUNT > USHRT_MAX);"])])


def _first_statement(cf: CFile, fn: Function, lines: list[str]) -> Edit:
    """Insert lines (and a blank line) where the statements of ``fn`` begin."""
    start, end = cedit.body(fn)
    pos = cf.text.index("\n", start) + 1
    while pos < end:
        line_end = cf.text.index("\n", pos) + 1
        # A line of comment stops the walk as a statement does: it speaks of what follows.
        line, code = cf.text[pos:line_end].strip(), cf.code[pos:line_end].strip()
        if line and not (code and cedit.is_declaration(code)):
            break
        pos = line_end
    return Edit(pos, pos, "".join(f"\t{line}\n" for line in lines) + "\n")


# -- patch 2 -------------------------------------------------------------------------
_LOOKUP_IF = re.compile(r"if\s*\(\s*!nf_nat_initialized\(\s*(\w+)\s*,\s*(\w+)\s*\)\s*\)\s*\{")


def nat_run_hooks(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    cf = view.parse(NAT_CORE_C)
    if cf.function(NAT_HELPER) is not None:
        raise RecipeError(f"{NAT_CORE_C}: {NAT_HELPER}() exists already")
    fn = cedit.require_function(view, NAT_CORE_C, "nf_nat_inet_fn")
    start, end = cedit.body(fn)
    m = _LOOKUP_IF.search(cf.code, start, end)
    if m is None:
        raise RecipeError(f"{NAT_CORE_C}: nf_nat_inet_fn() has no "
                          "'if (!nf_nat_initialized(ct, maniptype)) {' block")
    brace = cf.index_at(m.end() - 1)
    block = (cf.tokens[brace].end, cf.tokens[cf.matching(brace)].start)
    inner = cf.code[block[0]:block[1]]
    lpriv = re.search(r"struct nf_nat_lookup_hook_priv\s*\*\s*(\w+)\s*=\s*(\w+);", inner)
    if lpriv is None or ".hook(" not in inner:
        raise RecipeError(f"{NAT_CORE_C}: the lookup block of nf_nat_inet_fn() no longer "
                          "walks the lookup hooks of nf_nat_lookup_hook_priv")
    names = [p.name for p in fn.params]
    state, skb = names[2], names[1]
    indent = cf.indent_at(m.start()) + "\t"
    call = f"{NAT_HELPER}({state}, {skb}, {m.group(1)}, {lpriv.group(2)})"
    replacement = (f"\n{indent}unsigned int ret;\n\n{indent}ret = {call};\n"
                   f"{indent}if (ret != NF_ACCEPT)\n{indent}\treturn ret;\n{indent[:-1]}")
    edits = [Edit(block[0], block[1], replacement)]
    edits += _drop_unused_label(cf, fn, "do_nat", block)
    helper = ctx.renderer.render("c/nf_nat_inet_run_hooks.c.j2", helper=NAT_HELPER)
    top = cf.line_start(fn.start)
    edits.append(Edit(top, top, helper))
    view.edit(NAT_CORE_C, edits)
    return {"helper": NAT_HELPER}


def _drop_unused_label(cf: CFile, fn: Function, label: str, removed: tuple[int, int]) -> list[Edit]:
    start, end = cedit.body(fn)
    text = cf.code
    gotos = [m for m in re.finditer(rf"\bgoto\s+{label}\s*;", text[start:end])
             if not removed[0] <= start + m.start() < removed[1]]
    line = re.search(rf"^{label}:[ \t]*\n", text[start:end], re.M)
    if gotos or line is None:
        return []
    return [Edit(start + line.start(), start + line.end(), "")]


# -- patch 3 -------------------------------------------------------------------------
def slow_index(ctx: Context) -> dict[str, Any]:
    view = ctx.view
    cf = view.parse(NETFILTER_H)
    proto = cedit.require_function(view, NETFILTER_H, "nf_hook_slow", definition=False)
    if len(proto.params) != 4:
        raise RecipeError(f"{NETFILTER_H}: nf_hook_slow() should take 4 parameters")
    init = cedit.require_function(view, NETFILTER_H, "nf_hook_state_init")
    p = init.params[0].name
    pf_line = cedit.statement_after(cf, init, rf"{p}->pf\s*=")
    view.edit(NETFILTER_H, [
        cedit.reflow_params(cf, proto, [x.text for x in proto.params[:3]]),
        Edit(pf_line[1], pf_line[1], f"\t{p}->hook_index = 0;\n"),
    ])
    cf = view.parse(CORE_C)
    slow = cedit.require_function(view, CORE_C, "nf_hook_slow")
    index = slow.params[3].name
    state = slow.params[1].name
    view.edit(CORE_C, [
        cedit.reflow_params(cf, slow, [x.text for x in slow.params[:3]]),
        cedit.insert_declarations(cf, slow, [f"unsigned int {index} = {state}->hook_index;"]),
    ])
    return _slow_callers(view)


def _slow_callers(view: TreeView) -> dict[str, Any]:
    sites: list[str] = []
    resumes: list[str] = []
    resets: list[str] = []
    by_file: dict[str, list[Edit]] = {}
    for cf, call in _calls_everywhere(view, "nf_hook_slow"):
        if len(call.args) != 4:
            continue
        fn = cf.enclosing(call.name_start)
        name = f"{fn.name}()" if fn else "?"
        state, index = call.arg_texts[1], call.arg_texts[3]
        edits = by_file.setdefault(cf.path, [])
        if index == "0" and state.startswith("&") and fn is not None and \
                "nf_hook_state_init(" + state in cf.code[fn.start:fn.end].replace(" ", ""):
            # nf_hook_state_init() has just set the index to 0.
            edits.append(cedit.drop_item(call.args, 3, name))
        else:
            edits += _store_index_then_call(cf, call, state, index, 3)
            (resets if index == "0" else resumes).append(name)
        sites.append(f"{name} in {cf.path}")
    if not sites:
        raise RecipeError("no nf_hook_slow() call with an index argument found")
    for path, edits in by_file.items():
        view.edit(path, edits)
    return {"call_sites": sites, "resumes": resumes, "resets": resets}


# -- patch 4 -------------------------------------------------------------------------
def one_argument(ctx: Context) -> dict[str, Any]:
    inventory = discover(ctx.view)
    check_convertible(inventory)
    ctx.inventory = inventory
    for site in inventory.unclassified:
        ctx.warnings.append(f"{site.path}:{site.line}: {site.function.name}() has the hook "
                            "signature but is neither registered nor called by a hook; "
                            "left unchanged")
    bad = inventory.unsupported_calls()
    if bad:
        listing = "\n  ".join(f"{c.path}:{c.line}: {c.caller}() calls {c.callee}"
                              f"({', '.join(c.call.arg_texts)})" for c in bad)
        raise RecipeError(f"calls of hook functions patchgen cannot convert:\n  {listing}")
    return onearg.convert(ctx, inventory)


def _bpf() -> dict[str, Recipe]:
    return {
        "kernel_prog": bpf_recipes.kernel_prog,
        "generator": bpf_recipes.generator,
        "dying_netns": bpf_recipes.dying_netns,
        "netdev_bpf": bpf_recipes.netdev_bpf,
        "prog_cache": bpf_recipes.prog_cache,
        "selftest": selftest_recipe.selftest,
    }


RECIPES: dict[str, Recipe] = {
    "queue_index": queue_index,
    "nat_run_hooks": nat_run_hooks,
    "slow_index": slow_index,
    "one_argument": one_argument,
    **_bpf(),
}
