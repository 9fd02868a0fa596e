"""Patch 4: every hook function takes the state only.

For each hook found by ``hooks.discover``:

* the parameter list becomes its own state parameter;
* ``skb`` and ``priv`` come from the state: a parameter used once, or only
  inside ``#if`` blocks (where a local would be unused in some configs),
  is replaced by ``state->skb`` / ``state->priv`` in place; one used more
  often gets a local variable of the same name, so the body is untouched;
* calls of other hooks passing the caller's own (priv, skb, state) pass
  the state alone; calls with a state the caller built store skb and
  priv into it first;
* prototypes, and the static inline stubs in headers, follow.

Calls through ``->hook`` (the core's own) fill the state before calling.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from patchgen.csrc import CFile, Edit, Function, Token
from patchgen.series import cedit
from patchgen.series.context import Context
from patchgen.series.hooks import CallKind, CallSite, Inventory, Site
from patchgen.series.view import RecipeError

NETFILTER_H = "include/linux/netfilter.h"
FIELDS = {0: "priv", 1: "skb"}  # parameter position -> nf_hook_state member
DECL = {"priv": "void *{name} = {state}->priv;", "skb": "struct sk_buff *{name} = {state}->skb;"}
COPY = "hook_state"


@dataclass(frozen=True)
class Access:
    field: str
    name: str  # the parameter's name
    local: bool  # a local variable holds it; else uses read state->field
    uses: int
    # Where the local's declaration goes when every use sits in #if blocks:
    # inside the #if block that opens the body (None: the top of the body).
    decl_at: int | None = None


def convert(ctx: Context, inv: Inventory) -> dict[str, Any]:
    edits: dict[str, list[Edit]] = defaultdict(list)
    view = ctx.view
    _core(view.parse(NETFILTER_H), edits)
    indirect = _indirect_calls(ctx, edits)
    calls_in: dict[tuple[str, str], list[CallSite]] = defaultdict(list)
    for c in inv.calls:
        calls_in[(c.path, c.caller or "")].append(c)
    own_state: list[str] = []
    converted = 0
    for hook in inv.hooks:
        for site in hook.definitions:
            cf = view.parse(site.path)
            accesses = _convert_definition(cf, site, calls_in.pop((site.path, hook.name), []),
                                           edits[site.path], own_state)
            ctx.notes.append(f"{hook.name}: {site.path}:{site.line}: {hook.reason}"
                             + "".join(f"; {a.field}: {'local' if a.local else 'state->'}"
                                       for a in accesses))
            converted += 1
        for site in hook.prototypes:
            edits[site.path] += _prototype(view.parse(site.path), site.function)
    for (path, caller), sites in calls_in.items():
        # Calls from functions that are not hooks themselves.
        cf = view.parse(path)
        for c in sites:
            if c.kind is not CallKind.OWN_STATE:
                raise RecipeError(f"{path}:{c.line}: {caller}() calls {c.callee} "
                                  f"({c.kind.value})")
            edits[path] += _own_state_call(cf, c, {0: c.call.arg_texts[0],
                                                   1: c.call.arg_texts[1]})
            own_state.append(f"{caller}() in {path}")
    for path, file_edits in edits.items():
        view.edit(path, file_edits)
    return {"hooks": [h.name for h in inv.hooks], "definitions": converted,
            "own_state_calls": own_state, "indirect_calls": indirect}


def _core(cf: CFile, edits: dict[str, list[Edit]]) -> None:
    typedef = next((f for f in cf.functions() if f.name == "nf_hookfn"), None)
    if typedef is None or len(typedef.params) != 3:
        raise RecipeError(f"{NETFILTER_H}: no three-argument nf_hookfn typedef")
    edits[cf.path].append(_params_to_state(typedef))
    edits[cf.path].append(cedit.insert_members_first(
        cf, "nf_hook_state", "\tstruct sk_buff *skb;\n\tvoid *priv;\n"))


def _prototype(cf: CFile, fn: Function) -> list[Edit]:
    """Rewrite a prototype; drop "extern", which checkpatch flags on touched lines."""
    out = [_params_to_state(fn)]
    first = cf.index_at(fn.start)
    if cf.tokens[first].text == "extern":
        out.append(Edit(fn.start, cf.tokens[first + 1].start, ""))
    return out


def _params_to_state(fn: Function) -> Edit:
    return Edit(fn.params_open + 1, fn.params_close, fn.params[2].text)


def _indirect_calls(ctx: Context, edits: dict[str, list[Edit]]) -> list[str]:
    """``x->hook(priv, skb, state)``: fill the state, pass it alone."""
    found = []
    for path in ctx.view.grep("nf_hook_state"):
        cf = ctx.view.parse(path)
        for call in cf.member_calls("hook"):
            if len(call.args) != 3:
                continue
            fn = cf.enclosing(call.name_start)
            if fn is None:
                raise RecipeError(f"{path}:{cf.line_of(call.name_start)}: ->hook() call "
                                  "outside a function")
            edits[path] += _fill_state_and_call(cf, fn, call.arg_texts, call)
            found.append(f"{fn.name}() in {path}")
    return found


def _fill_state_and_call(cf: CFile, fn: Function, args: tuple[str, ...], call: Any) -> list[Edit]:
    priv, skb, state = args
    param = next((p for p in fn.params if p.name == state), None)
    if param is None or "nf_hook_state" not in param.text:
        raise RecipeError(f"{cf.path}:{cf.line_of(call.name_start)}: {fn.name}() calls a hook "
                          f"with state {state!r}, which is not one of its parameters")
    out: list[Edit] = []
    if param.type.startswith("const"):
        # A const state cannot be written: work on a copy.
        out.append(cedit.insert_declarations(cf, fn, [f"struct nf_hook_state {COPY} = *{state};"]))
        target, pointer = COPY, f"&{COPY}"
        lines = [f"{COPY}.skb = {skb};", f"{COPY}.priv = {priv};"]
    else:
        target, pointer = state, state
        lines = [f"{target}->skb = {skb};", f"{target}->priv = {priv};"]
    out.append(cedit.insert_before_statement(cf, call.name_start, lines))
    out.append(Edit(call.open + 1, call.close, pointer))
    return out



def _convert_definition(cf: CFile, site: Site, calls: list[CallSite], edits: list[Edit],
                        own_state: list[str]) -> list[Access]:
    fn = cf.function(site.function.name)
    if fn is None or fn.start != site.function.start:
        fn = site.function
    names = [p.name for p in fn.params]
    if None in names:
        raise RecipeError(f"{site.path}:{site.line}: {fn.name}() has an unnamed parameter")
    state = str(names[2])
    removed: list[tuple[int, int]] = []
    extra = {0: 0, 1: 0}
    for c in calls:
        removed.append((c.call.open + 1, c.call.close))
        if c.kind is CallKind.OWN_STATE:
            extra[0] += 1
            extra[1] += 1
    accesses = [_access(cf, fn, pos, str(names[pos]), state, removed, extra[pos])
                for pos in (1, 0)]
    accessor = {pos: (a.name if a.local else f"{state}->{a.field}")
                for pos, a in zip((1, 0), accesses, strict=True)}
    for c in calls:
        if c.kind is CallKind.PASSTHROUGH:
            edits.append(Edit(c.call.open + 1, c.call.close, state))
        else:
            edits += _own_state_call(cf, c, accessor)
            own_state.append(f"{fn.name}() in {cf.path}")
    decls = [DECL[a.field].format(name=a.name, state=state)
             for a in accesses if a.local and a.decl_at is None]
    if decls:
        edits.append(cedit.insert_declarations(cf, fn, decls))
    edits += [Edit(a.decl_at, a.decl_at, "\t" + DECL[a.field].format(name=a.name, state=state)
                   + "\n") for a in accesses if a.local and a.decl_at is not None]
    for a in accesses:
        if not a.local:
            for tok in _uses(cf, fn, a.name, removed):
                edits.append(Edit(tok.start, tok.end, f"{state}->{a.field}"))
    edits.append(_params_to_state(fn))
    return [a for a in accesses if a.uses]


def _own_state_call(cf: CFile, c: CallSite, accessor: dict[int, str]) -> list[Edit]:
    var = c.state_var
    lines = [f"{var}.skb = {accessor[1]};", f"{var}.priv = {accessor[0]};"]
    return [cedit.insert_before_statement(cf, c.call.name_start, lines),
            Edit(c.call.open + 1, c.call.close, f"&{var}")]


def _uses(cf: CFile, fn: Function, name: str, removed: list[tuple[int, int]]) -> list[Token]:
    assert fn.body_open is not None and fn.body_close is not None
    return [t for t in cf.references(name, within=(fn.body_open, fn.body_close))
            if not any(a <= t.start < b for a, b in removed)]


def _access(cf: CFile, fn: Function, pos: int, name: str, state: str,
            removed: list[tuple[int, int]], extra: int) -> Access:
    field = FIELDS[pos]
    uses = _uses(cf, fn, name, removed)
    count = len(uses) + extra
    if count == 0:
        return Access(field, name, False, 0)
    body = cedit.body(fn)
    conditional = bool(uses) and all(cf.in_conditional(t.start, body) for t in uses)
    inline = (count == 1 or conditional) and \
        not any(_written(cf, t) for t in uses) and _fits(cf, uses, name, f"{state}->{field}")
    if inline or not conditional:
        return Access(field, name, not inline, count)
    # A local at the top of the body would be unused when the #if blocks
    # are compiled out (-Wunused-variable; an error with CONFIG_WERROR).
    decl_at = _conditional_decl_position(cf, body, uses)
    if decl_at is None:
        raise RecipeError(f"{cf.path}:{cf.line_of(fn.start)}: {fn.name}() uses {name} only "
                          "inside #if blocks, where a local copy would be unused in some "
                          "configurations, and no #if block with the same condition opens "
                          "the body to declare it in")
    return Access(field, name, True, count, decl_at)


def _conditional_decl_position(cf: CFile, body: tuple[int, int],
                               uses: list[Token]) -> int | None:
    """After the ``#if`` line of the block that opens the body, if that block
    has the same condition as the (outermost) blocks holding every use."""
    ranges = sorted(r for r in cf.conditional_ranges() if body[0] < r[0] < body[1])
    outer = [r for r in ranges if not any(o[0] < r[0] and r[1] <= o[1] for o in ranges)]
    conds = {next(r[2] for r in outer if r[0] <= t.start < r[1]) for t in uses}
    if len(conds) != 1 or not outer:
        return None
    first = outer[0]
    if first[2] != conds.pop() or cf.text[body[0] + 1:first[0]].strip():
        return None
    return cf.text.index("\n", first[0]) + 1


def _written(cf: CFile, tok: Token) -> bool:
    nxt = cf.next_token(tok.end)
    prev = cf.prev_token(tok.start)
    return (nxt is not None and nxt.text in ("=", "++", "--", "+=", "-=")) or \
        (prev is not None and prev.text in ("&", "++", "--"))


def _fits(cf: CFile, uses: list[Token], name: str, replacement: str) -> bool:
    grow = len(replacement) - len(name)
    lines: dict[int, int] = defaultdict(int)
    for t in uses:
        lines[cf.line_start(t.start)] += grow
    for start, extra in lines.items():
        end = cf.text.find("\n", start)
        width = cedit.line_columns(cf.text[start:end])
        # Stay within 80 columns unless the line was already longer.
        limit = cedit.WRAP_COLUMNS if width <= cedit.WRAP_COLUMNS else cedit.MAX_COLUMNS
        if width + extra > limit:
            return False
    return True
