"""Discover netfilter hook functions in a tree (the input of patch 4).

A hook function is found by what the tree does with it, never by its name:

1. candidates: every definition or prototype whose parameter list is
   ``(void *, struct sk_buff *, const struct nf_hook_state *)``, whatever
   the parameter names;
2. registered: a candidate whose name is used as a value (``.hook = fn``,
   ``[NF_INET_LOCAL_IN] = fn``, ``xt_hook_ops_alloc(table, fn)``,
   ``ops.hook = fn`` ...) anywhere in the tree;
3. called by a hook: a candidate called from a hook function; repeated
   until nothing changes.

Candidates that end up in neither class are reported by name as
unclassified, never skipped in silence.  A hook patchgen cannot see, and
so cannot convert, stops the series with its file:line (check_convertible):
one defined through a macro that spells the hook signature
(``DEFINE_HOOK(fn) { ... }``), or one registered in a ``struct nf_hook_ops``
with no definition of that signature in sight.  Every call of a hook function is
classified too: passing the caller's own (priv, skb, state) through, or
passing a state the caller built itself; any other call is unsupported and
named with file:line.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from patchgen.csrc import Call, CFile, Function, Token, enclosing_open
from patchgen.series.view import RecipeError, TreeView

HOOK_SIGNATURE = ("void *", "struct sk_buff *", "const struct nf_hook_state *")
STATE_TYPE = "struct nf_hook_state"


class CallKind(enum.Enum):
    PASSTHROUGH = "passes its own priv, skb and state"
    OWN_STATE = "passes a state it built itself"
    UNSUPPORTED = "unsupported arguments"


@dataclass(frozen=True)
class Site:
    """A function definition or prototype in a file."""

    path: str
    function: Function
    line: int


@dataclass(frozen=True)
class ValueUse:
    path: str
    line: int
    spelling: str  # how the name is used: ".hook = fn", "argument of xt_hook_ops_alloc()"...


@dataclass(frozen=True)
class CallSite:
    path: str
    line: int
    caller: str | None
    callee: str
    call: Call
    kind: CallKind
    state_var: str | None = None  # OWN_STATE: the local struct passed by address


@dataclass
class HookFunction:
    name: str
    definitions: list[Site] = field(default_factory=list)
    prototypes: list[Site] = field(default_factory=list)
    registered: list[ValueUse] = field(default_factory=list)
    called_by: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if self.registered:
            u = self.registered[0]
            return f"registered ({u.spelling}, {u.path}:{u.line})"
        return "called by hook " + ", ".join(sorted(set(self.called_by)))

    @property
    def files(self) -> list[str]:
        return sorted({s.path for s in self.definitions + self.prototypes})


@dataclass(frozen=True)
class Unconvertible:
    """A hook function the generator cannot rewrite, and why."""

    path: str
    line: int
    name: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.name}() {self.why}"


@dataclass(frozen=True)
class Inventory:
    hooks: tuple[HookFunction, ...]
    unclassified: tuple[Site, ...]
    calls: tuple[CallSite, ...]
    files: dict[str, CFile]
    unconvertible: tuple[Unconvertible, ...] = ()

    def hook_names(self) -> set[str]:
        return {h.name for h in self.hooks}

    def by_name(self, name: str) -> HookFunction:
        for h in self.hooks:
            if h.name == name:
                return h
        raise KeyError(name)

    def unsupported_calls(self) -> list[CallSite]:
        return [c for c in self.calls if c.kind is CallKind.UNSUPPORTED]


def is_hook_signature(fn: Function) -> bool:
    return len(fn.params) == 3 and fn.param_types() == HOOK_SIGNATURE


def is_typedef(cf: CFile, fn: Function) -> bool:
    return "typedef" in _words_before_name(cf, fn)


def _words_before_name(cf: CFile, fn: Function) -> list[str]:
    """The code tokens of a declaration before the function's name."""
    return [t.text for t in cf.tokens[cf.index_at(fn.start):cf.index_at(fn.name_start)]]


class _Files:
    """Parsed files of the view, kept for the inventory."""

    def __init__(self, view: TreeView) -> None:
        self.view = view
        self.parsed: dict[str, CFile] = {}

    def get(self, path: str) -> CFile:
        if path not in self.parsed:
            self.parsed[path] = self.view.parse(path)
        return self.parsed[path]


def discover(view: TreeView) -> Inventory:
    files = _Files(view)
    candidates = _candidates(view, files)
    names = sorted(candidates)
    statics = {n: _file_static(files, defs) for n, (defs, _) in candidates.items()}
    hooks: dict[str, HookFunction] = {}
    calls_by_callee: dict[str, list[tuple[str, Call, Function | None]]] = {n: [] for n in names}
    for path in view.grep("(" + "|".join(names) + ")", word=True) if names else []:
        cf = files.get(path)
        visible = {n for n in names if _visible(path, candidates[n], statics[n])}
        for i, tok in enumerate(cf.tokens):
            if tok.kind != "ident" or tok.text not in visible:
                continue
            if i > 0 and cf.tokens[i - 1].text in (".", "->"):
                continue  # a struct member that happens to share the name
            _classify_reference(cf, path, tok.text, tok, candidates, hooks, calls_by_callee)
    _close_over_calls(candidates, hooks, calls_by_callee)
    calls = tuple(_call_sites(files, hooks, calls_by_callee))
    unclassified = tuple(site for name, (defs, _) in sorted(candidates.items())
                         if name not in hooks for site in defs)
    macro_hooks = list(_macro_hooks(view, files))
    hidden = _registered_unseen(view, files, set(candidates), {u.name for u in macro_hooks})
    return Inventory(tuple(sorted(hooks.values(), key=lambda h: h.name)), unclassified, calls,
                     files.parsed, tuple(macro_hooks + hidden))


def check_convertible(inv: Inventory) -> None:
    """Stop with file:line for every hook the generator would leave unconverted
    (the series would not build: -Werror=incompatible-pointer-types)."""
    if inv.unconvertible:
        listing = "\n  ".join(str(u) for u in inv.unconvertible)
        raise RecipeError(f"hook functions patchgen cannot convert:\n  {listing}")


# The hook parameter list as text, as a macro body spells it.
_HOOK_PARAMS = re.compile(r"(\w+)\s*\(\s*void\s*\*\s*\w*\s*,\s*struct\s+sk_buff\s*\*\s*\w*\s*,"
                          r"\s*const\s+struct\s+nf_hook_state\s*\*\s*\w*\s*\)")
_DEFINE = re.compile(r"#\s*define\s+(\w+)\(([^)]*)\)(.*)", re.S)


def _hook_macros(view: TreeView, files: _Files) -> dict[str, tuple[str, int, int]]:
    """Function-like macros that define a hook: name -> (path, line, index of the
    macro parameter that names the function)."""
    found: dict[str, tuple[str, int, int]] = {}
    for path in view.grep("nf_hook_state"):
        cf = files.get(path)
        for d in cf.directives:
            m = _DEFINE.match(cf.code[d.start:d.end].replace("\\\n", " "))
            fn = _HOOK_PARAMS.search(m.group(3)) if m else None
            if m is None or fn is None:
                continue
            params = [p.strip() for p in m.group(2).split(",")]
            index = params.index(fn.group(1)) if fn.group(1) in params else 0
            found[m.group(1)] = (path, _tree_line(view, cf, d.start), index)
    return found


def _macro_hooks(view: TreeView, files: _Files) -> Iterable[Unconvertible]:
    """``DEFINE_HOOK(fn) { ... }`` at file scope: a hook csrc sees no function in."""
    macros = _hook_macros(view, files)
    for path in view.grep("(" + "|".join(macros) + ")", word=True) if macros else []:
        cf = files.get(path)
        for i, tok in enumerate(cf.tokens[:-1]):
            if tok.text not in macros or cf.tokens[i + 1].text != "(" or \
                    cf.enclosing(tok.start) is not None:
                continue
            close = cf.matching(i + 1)
            after = cf.tokens[close + 1].text if close + 1 < len(cf.tokens) else ""
            if after != "{":
                continue  # a use in a declaration, or the macro's own use elsewhere
            mpath, mline, index = macros[tok.text]
            args = [a.text for a in cf.calls(tok.text, within=(tok.start, tok.end))[0].args] \
                or [""]
            name = args[index] if index < len(args) else args[0]
            yield Unconvertible(path, _tree_line(view, cf, tok.start), name,
                                f"is defined through the macro {tok.text}() ({mpath}:{mline})")


def _registered_unseen(view: TreeView, files: _Files, candidates: set[str],
                       reported: set[str]) -> list[Unconvertible]:
    """``.hook = fn`` in a file-scope ``struct nf_hook_ops`` whose ``fn`` has no
    definition or prototype with the hook signature anywhere."""
    out = []
    for path in view.grep(r"\.hook\s*="):
        cf = files.get(path)
        for i, tok in enumerate(cf.tokens):
            if tok.text != "hook" or i == 0 or cf.tokens[i - 1].text != "." or \
                    cf.enclosing(tok.start) is not None or not _in_hook_ops(cf, i):
                continue
            name = _assigned_name(cf, i)
            if name is None or name in candidates or name in reported or name == "NULL":
                continue
            out.append(Unconvertible(path, _tree_line(view, cf, tok.start), name,
                                     f"is registered (.hook = {name}) but patchgen found no "
                                     "definition of it with the hook signature"))
    return out


def _tree_line(view: TreeView, cf: CFile, offset: int) -> int:
    """The line of ``offset`` as the user's tree has it: the view holds the file
    as the earlier patches left it, and they may have moved it."""
    line = cf.line_of(offset)
    try:
        original = (view.root / cf.path).read_text().splitlines()
    except OSError:
        return line
    lines = cf.text.splitlines()
    nth = lines[:line - 1].count(lines[line - 1])
    same = [i for i, text in enumerate(original, 1) if text == lines[line - 1]]
    return same[nth] if nth < len(same) else line


def _in_hook_ops(cf: CFile, i: int) -> bool:
    """Token ``i`` is inside the initializer of a ``struct nf_hook_ops``."""
    depth = 0
    while i > 0:
        i -= 1
        t = cf.tokens[i].text
        if t == "}":
            depth += 1
        elif t == "{":
            if depth == 0 and cf.tokens[i - 1].text == "=":
                before = [tk.text for tk in cf.tokens[max(0, i - 8):i]]
                return "nf_hook_ops" in before
            depth = max(depth - 1, 0)
        elif t == ";" and depth == 0:
            return False
    return False


def _assigned_name(cf: CFile, i: int) -> str | None:
    """``.hook = fn`` or ``.hook = (nf_hookfn *)fn``: fn."""
    toks = cf.tokens
    j = i + 1
    if j >= len(toks) or toks[j].text != "=":
        return None
    j += 1
    if j < len(toks) and toks[j].text == "(":
        j = cf.matching(j) + 1  # a cast
    if j + 1 < len(toks) and toks[j].kind == "ident" and toks[j + 1].text in (",", "}"):
        return toks[j].text
    return None


def _candidates(view: TreeView, files: _Files) -> dict[str, tuple[list[Site], list[Site]]]:
    """name -> (definitions, prototypes) with the hook signature."""
    found: dict[str, tuple[list[Site], list[Site]]] = {}
    for path in view.grep("nf_hook_state"):
        cf = files.get(path)
        for fn in cf.functions():
            if not is_hook_signature(fn) or is_typedef(cf, fn):
                continue
            defs, protos = found.setdefault(fn.name, ([], []))
            (defs if fn.is_definition else protos).append(Site(path, fn, cf.line_of(fn.start)))
    return found


def _file_static(files: _Files, defs: list[Site]) -> bool:
    """Defined static in a .c file (not a static inline of a header)."""
    return bool(defs) and all(
        s.path.endswith(".c") and "static" in _words_before_name(files.get(s.path), s.function)
        for s in defs)


def _visible(path: str, sites: tuple[list[Site], list[Site]], static: bool) -> bool:
    """Whether a name used in ``path`` can refer to the candidate at all.

    A static function of a .c file is only visible in that file: this
    keeps a driver's local variable called ``accept_all`` from being taken
    for netfilter's hook.  Anything else (global functions, static inlines
    in headers) may be reached through any chain of includes, so every use
    counts.
    """
    defs, protos = sites
    if not static:
        return True
    return any(s.path == path for s in defs + protos)


def _own_declaration(cf: CFile, name: str, tok: Token) -> bool:
    return any(fn.name == name and fn.name_start == tok.start for fn in cf.functions())



def _classify_reference(cf: CFile, path: str, name: str, tok: Token,
                        candidates: dict[str, tuple[list[Site], list[Site]]],
                        hooks: dict[str, HookFunction],
                        calls_by_callee: dict[str, list[tuple[str, Call, Function | None]]]
                        ) -> None:
    if _own_declaration(cf, name, tok):
        return
    if not cf.is_value_use(tok):
        for call in cf.calls(name, within=(tok.start, tok.end)):
            calls_by_callee[name].append((path, call, cf.enclosing(tok.start)))
        return
    spelling = _spelling(cf, tok)
    if spelling.startswith(("comparison", "argument of EXPORT_SYMBOL")):
        return  # comparing with ops->hook or exporting the symbol registers nothing
    hook = hooks.get(name)
    if hook is None:
        defs, protos = candidates[name]
        hook = hooks[name] = HookFunction(name, list(defs), list(protos))
    hook.registered.append(ValueUse(path, cf.line_of(tok.start), spelling))


def _spelling(cf: CFile, tok: Token) -> str:
    prev = cf.prev_token(tok.start)
    if prev is None:
        return "value"
    if prev.text in ("==", "!="):
        return "comparison"
    nxt = cf.next_token(tok.end)
    if nxt is not None and nxt.text in ("==", "!="):
        return "comparison"
    if prev.text == "=":
        before = cf.prev_token(prev.start)
        two = cf.prev_token(before.start) if before is not None else None
        if before is not None and two is not None and two.text == ".":
            return f".{before.text} = {tok.text}"
        if before is not None and before.text == "]":
            return f"[...] = {tok.text}"
        return f"assignment = {tok.text}"
    if prev.text in ("(", ","):
        callee = _callee_of_argument(cf, tok)
        return f"argument of {callee}()" if callee else "argument"
    return "value"


def _callee_of_argument(cf: CFile, tok: Token) -> str | None:
    """The function whose argument list holds ``tok``: the innermost open
    bracket around it, if that is the "(" of a call."""
    i = enclosing_open(cf, cf.index_at(tok.start))
    if i is not None and cf.tokens[i].text == "(" and i > 0 and cf.tokens[i - 1].kind == "ident":
        return cf.tokens[i - 1].text
    return None


def _close_over_calls(candidates: dict[str, tuple[list[Site], list[Site]]],
                      hooks: dict[str, HookFunction],
                      calls_by_callee: dict[str, list[tuple[str, Call, Function | None]]]) -> None:
    changed = True
    while changed:
        changed = False
        for callee, calls in calls_by_callee.items():
            for _, _, caller in calls:
                if caller is None or caller.name not in hooks or callee == caller.name:
                    continue
                hook = hooks.get(callee)
                if hook is None:
                    defs, protos = candidates[callee]
                    hook = hooks[callee] = HookFunction(callee, list(defs), list(protos))
                    changed = True
                if caller.name not in hook.called_by:
                    hook.called_by.append(caller.name)


def _call_sites(files: _Files, hooks: dict[str, HookFunction],
                calls_by_callee: dict[str, list[tuple[str, Call, Function | None]]]
                ) -> Iterable[CallSite]:
    for callee in sorted(hooks):
        for path, call, caller in calls_by_callee.get(callee, []):
            cf = files.get(path)
            kind, var = classify_call(cf, call, caller, set(hooks))
            yield CallSite(path, cf.line_of(call.name_start), caller.name if caller else None,
                           callee, call, kind, var)


def classify_call(cf: CFile, call: Call, caller: Function | None,
                  hook_names: set[str]) -> tuple[CallKind, str | None]:
    args = call.arg_texts
    if len(args) != 3:
        return CallKind.UNSUPPORTED, None
    if caller is not None and caller.name in hook_names and is_hook_signature(caller):
        own = tuple(p.name for p in caller.params)
        if args == own:
            return CallKind.PASSTHROUGH, None
    state = args[2]
    if state.startswith("&") and caller is not None and caller.body_open is not None:
        var = state[1:].strip()
        if var.isidentifier() and _declares_local_state(cf, caller, var):
            return CallKind.OWN_STATE, var
    return CallKind.UNSUPPORTED, None


def _declares_local_state(cf: CFile, fn: Function, var: str) -> bool:
    assert fn.body_open is not None and fn.body_close is not None
    body = cf.code[fn.body_open:fn.body_close]
    return re.search(rf"\b{STATE_TYPE}\s+{var}\s*[;=]", body) is not None
