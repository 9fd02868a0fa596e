"""Recipes for patches 6-9: the generator, its lifetime rules, netdev, the cache.

The new C (nf_hook_bpf.c, nf_hook_bpf.h, the netfilter.h helper, the
Kconfig entry) is rendered from templates with parameters from the tree
probe; the hunks in existing files are placed by structure, like the
earlier recipes do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from patchgen.csrc import Call, CFile, Edit, Function
from patchgen.series import cedit
from patchgen.series.context import Context
from patchgen.series.view import RecipeError, TreeView

NETFILTER_H = "include/linux/netfilter.h"
CORE_C = "net/netfilter/core.c"
KCONFIG = "net/netfilter/Kconfig"
MAKEFILE = "net/netfilter/Makefile"
HOOK_BPF_H = "include/net/netfilter/nf_hook_bpf.h"
BPF_H = "include/linux/bpf.h"
FILTER_H = "include/linux/filter.h"
BPF_CORE_C = "kernel/bpf/core.c"
SYSCALL_C = "kernel/bpf/syscall.c"
SYSCTL_RST = "Documentation/networking/netfilter-sysctl.rst"
KCONFIG_ANCHOR = "NETFILTER_NETLINK_HOOK"
# Locations with more hooks keep nf_hook_slow() (NF_HOOK_BPF_MAX_HOOKS).
MAX_PROG_HOOKS = 128


def _generator_params(ctx: Context) -> dict[str, Any]:
    facts = ctx.facts
    if facts.kfree_skb_reason_inline:
        if not facts.has_sk_skb_reason_drop:
            raise RecipeError("kfree_skb_reason() is inline here but sk_skb_reason_drop() "
                              "is missing: no function for the program to drop with")
        drop = "sk_skb_reason_drop"
    else:
        drop = "kfree_skb_reason"
    return {"drop": drop, "max_hooks": MAX_PROG_HOOKS,
            "sysctl_sentinel": not facts.has_register_net_sysctl_sz,
            "unbound_wq": facts.unbound_wq or "system_unbound_wq",
            "kmalloc_obj": facts.has_kmalloc_obj}


# -- the bpf patch: programs the kernel generates itself -------------------------------
KERNEL_GENERATED = "kernel_generated"
HUNKS_5 = "c/bpf_kernel_prog_hunks.j2"


def kernel_prog(ctx: Context) -> dict[str, Any]:
    """bpf_prog_load_kernel(): what bpf(2) gives a loaded program, for kernel code.

    A flag in bpf_prog_aux marks such programs: they are eBPF although their
    type is UNSPEC (bpf_prog_was_classic()), they get a kallsyms entry
    whatever the capabilities of the task that built them, and no fd lets
    user space run, attach or pin them (bpf_prog_get_ok()).
    """
    view, facts = ctx.view, ctx.facts
    if facts.lsm_bpf_prog_hook is None:
        raise RecipeError("include/linux/security.h declares neither security_bpf_prog_alloc() "
                          "nor security_bpf_prog_load()")
    if not facts.bpf_prog_alloc_id_static:
        raise RecipeError(f"{SYSCALL_C}: bpf_prog_alloc_id() is not the static function "
                          "the helper is written next to")
    _bpf_h(ctx)
    _was_classic(ctx)
    _kallsyms_add(view)
    _syscall_c(ctx)
    return {"flag": KERNEL_GENERATED}


def _bpf_h(ctx: Context) -> None:
    view = ctx.view
    cf = view.parse(BPF_H)
    proto = cedit.require_function(view, BPF_H, "bpf_prog_put", definition=False)
    stub = cedit.require_function(view, BPF_H, "bpf_prog_put")
    if stub.body_close is None:
        raise RecipeError(f"{BPF_H}: bpf_prog_put() stub has no body")
    after_proto = cf.text.index("\n", proto.end) + 1
    after_stub = cf.text.index("\n", stub.body_close) + 1
    view.edit(BPF_H, [
        cedit.insert_member_after(cf, "bpf_prog_aux", r"bool\s+verifier_zext;",
                                  ctx.renderer.render_block(HUNKS_5, "aux_member",
                                                            flag=KERNEL_GENERATED)),
        Edit(after_proto, after_proto, ctx.renderer.render_block(HUNKS_5, "prototype")),
        Edit(after_stub, after_stub, ctx.renderer.render_block(HUNKS_5, "stub")),
    ])


def _was_classic(ctx: Context) -> None:
    view = ctx.view
    cf = view.parse(FILTER_H)
    fn = cedit.require_function(view, FILTER_H, "bpf_prog_was_classic")
    start, end = cedit.statement_after(cf, fn, r"return prog->type == BPF_PROG_TYPE_UNSPEC;")
    view.edit(FILTER_H, [Edit(start, end, ctx.renderer.render_block(
        HUNKS_5, "was_classic", flag=KERNEL_GENERATED))])


def _kallsyms_add(view: TreeView) -> None:
    """The kernel's own programs get a symbol whoever built them."""
    cf = view.parse(BPF_CORE_C)
    fn = cedit.require_function(view, BPF_CORE_C, "bpf_prog_kallsyms_add")
    start, end = cedit.body(fn)
    m = re.search(r"(!bpf_prog_kallsyms_candidate\((\w+)\) \|\|\n\s*)(!\w+\([^;{]*?\))\)\n",
                  cf.code[start:end])
    if m is None:
        raise RecipeError(f"{BPF_CORE_C}: bpf_prog_kallsyms_add() does not start with the "
                          "'not a candidate || not capable' test")
    prog, capable = m.group(2), m.group(3)
    view.edit(BPF_CORE_C, [Edit(start + m.start(3), start + m.end(3),
                                f"(!{prog}->aux->{KERNEL_GENERATED} && {capable})")])


def _syscall_c(ctx: Context) -> None:
    view = ctx.view
    cf = view.parse(SYSCALL_C)
    get_ok = cedit.require_function(view, SYSCALL_C, "bpf_prog_get_ok")
    load = cedit.require_function(view, SYSCALL_C, "bpf_prog_load")
    prog = get_ok.params[0].name
    open_brace, _ = cedit.body(get_ok)
    if load.body_close is None:
        raise RecipeError(f"{SYSCALL_C}: bpf_prog_load() has no body")
    after_load = cf.text.index("\n", load.body_close) + 1
    helper = ctx.renderer.render("c/bpf_prog_load_kernel.c.j2",
                                 lsm_hook=ctx.facts.lsm_bpf_prog_hook,
                                 lsm_kernel_arg=ctx.facts.lsm_prog_load_kernel_arg)
    view.edit(SYSCALL_C, [
        Edit(open_brace + 1, open_brace + 1, ctx.renderer.render_block(
            HUNKS_5, "get_ok", flag=KERNEL_GENERATED, prog=prog)),
        Edit(after_load, after_load, helper),
    ])


# -- patch 6 --------------------------------------------------------------------------
def generator(ctx: Context) -> dict[str, Any]:
    view, r, runtime = ctx.view, ctx.renderer, ctx.runtime
    for path in (HOOK_BPF_H, runtime.generator):
        if view.exists(path):
            raise RecipeError(f"{path} exists already")
    if ctx.facts.retpoline_symbol is None:
        raise RecipeError("no retpoline symbol (RETPOLINE or MITIGATION_RETPOLINE) in "
                          "arch/x86/Kconfig")
    params = _generator_params(ctx) | {"own_walks": own_walks(ctx)}
    params["walk_headers"] = sorted({w.header for w in params["own_walks"]})
    view.write(HOOK_BPF_H, r.render("c/nf_hook_bpf.h.j2"))
    view.write(runtime.generator, r.render("c/nf_hook_bpf.c.j2", **params))
    _kconfig(view, runtime.kconfig,
             r.render("c/Kconfig-nf_hook_bpf.j2", retpoline=ctx.facts.retpoline_symbol))
    obj = PurePosixPath(runtime.generator).with_suffix(".o").name
    _makefile(view, f"netfilter-$(CONFIG_{runtime.kconfig}) += {obj}\n")
    _netfilter_h(ctx)
    unregister = _core_c(view)
    _sysctl_doc(view, r.render("doc/netfilter-sysctl-nf_hook_bpf.rst.j2", **params))
    return {"drop": params["drop"], "max_hooks": MAX_PROG_HOOKS, "hook_limit": _hook_limit(view),
            "unregister": unregister,
            "retpoline": ctx.facts.retpoline_symbol, "own_walks": params["own_walks"]}


@dataclass(frozen=True)
class OwnWalk:
    """A function that calls the hooks of one location itself."""

    function: str
    path: str
    pf: str  # NFPROTO_...
    hook: str  # its hook number's name
    header: str  # where the hook number is defined, for the generator to include

    def __str__(self) -> str:
        return f"{self.function}() in {self.path}"


def own_walks(ctx: Context) -> list[OwnWalk]:
    """Functions that walk the hooks of a location themselves, calling each
    with nf_hook_entry_hookfn() in a loop over num_hook_entries, instead of
    through nf_hook_slow(): the switch does not reach them, and a program
    for their location would never run (bridge prerouting,
    nf_hook_bridge_pre(), which goes back to the bridge after each
    accepting hook).  Not nf_hook_slow() itself, nor the reinject path,
    which resumes a location after a queue verdict.  Their location is
    read from their nf_hook_state_init() call."""
    skip = {CORE_C, ctx.facts.nf_reinject_file}
    found: dict[str, OwnWalk] = {}
    for path in ctx.view.grep(r"nf_hook_entry_hookfn\("):
        if path in skip or path.endswith(".h"):
            continue
        cf = ctx.view.parse(path)
        for call in cf.calls("nf_hook_entry_hookfn"):
            fn = cf.enclosing(call.name_start)
            if fn is None or "num_hook_entries" not in cf.text[fn.start:fn.end]:
                continue
            init = cf.calls("nf_hook_state_init", within=(fn.start, fn.end))
            if len(init) != 1 or len(init[0].args) < 3:
                line = cf.text.count("\n", 0, fn.name_start) + 1
                raise RecipeError(f"{path}:{line}: {fn.name}() calls the hooks of a location "
                                  "itself, but which location (one nf_hook_state_init() "
                                  "call) cannot be read")
            hook, pf = (a.strip() for a in init[0].arg_texts[1:3])
            found[fn.name] = OwnWalk(fn.name, path, pf, hook, _defined_in(ctx.view, hook))
    return sorted(found.values(), key=str)


def _defined_in(view: TreeView, name: str) -> str:
    """The header to include for ``name`` (an enum constant or a macro):
    include/linux/X.h where it exists, else the uapi header defining it."""
    for path in view.grep(rf"\b{name}\b"):
        if not path.startswith("include/uapi/") and not path.startswith("include/linux/"):
            continue
        text = view.read(path)
        if re.search(rf"(#define\s+{name}\b|^\s*{name}\s*[,=])", text, re.M):
            kernel = path.replace("include/uapi/linux/", "include/linux/")
            return (kernel if view.exists(kernel) else path).removeprefix("include/")
    raise RecipeError(f"no header under include/ defines {name}")


def _sysctl_doc(view: TreeView, entry: str) -> None:
    """The sysctl's entry, at the end of the netfilter sysctl documentation."""
    if not view.exists(SYSCTL_RST):
        raise RecipeError(f"{SYSCTL_RST} does not exist: nowhere to document the sysctl")
    text = view.read(SYSCTL_RST)
    if re.search(r"^nf_hook_bpf\b", text, re.M):
        raise RecipeError(f"{SYSCTL_RST} documents nf_hook_bpf already")
    view.write(SYSCTL_RST, text.rstrip("\n") + "\n" + entry)


def _hook_limit(view: TreeView) -> int:
    cf = view.parse(CORE_C)
    define = cf.define("MAX_HOOK_COUNT")
    m = re.search(r"MAX_HOOK_COUNT\s+(\d+)\s*$", cf.code[define.start:define.end]) \
        if define is not None else None
    if m is None:
        raise RecipeError(f"{CORE_C}: no '#define MAX_HOOK_COUNT <number>'")
    return int(m.group(1))


def _kconfig(view: TreeView, symbol: str, block: str) -> None:
    text = view.read(KCONFIG)
    m = re.search(rf"^config {KCONFIG_ANCHOR}\n", text, re.M)
    if m is None:
        raise RecipeError(f"{KCONFIG}: no 'config {KCONFIG_ANCHOR}' to put {symbol} before")
    if re.search(rf"^config {symbol}\b", text, re.M):
        raise RecipeError(f"{KCONFIG}: {symbol} exists already")
    view.write(KCONFIG, text[:m.start()] + block + text[m.start():])


def _makefile(view: TreeView, line: str) -> None:
    text = view.read(MAKEFILE)
    m = re.search(r"^netfilter-objs\s*:=.*\n", text, re.M)
    if m is None:
        raise RecipeError(f"{MAKEFILE}: no 'netfilter-objs :=' line (the core object list)")
    view.write(MAKEFILE, text[:m.end()] + line + text[m.end():])


def _after_includes(cf: CFile) -> int:
    """Offset after the last #include of the file's leading include block."""
    first_code = cf.tokens[0].start if cf.tokens else len(cf.text)
    includes = [d for d in cf.directives if "include" in d.text.split("<")[0].split('"')[0]
                and d.start < first_code]
    if not includes:
        raise RecipeError(f"{cf.path}: no #include block")
    end = includes[-1].end
    return end + 1 if cf.text[end:end + 1] == "\n" else end


def _rename_call(cf: CFile, fn: Function, old: str, new: str) -> Edit:
    calls = cf.calls(old, within=cedit.body(fn))
    if len(calls) != 1:
        raise RecipeError(f"{cf.path}: expected one {old}() call in {fn.name}(), "
                          f"found {len(calls)}")
    return Edit(calls[0].name_start, calls[0].name_start + len(old), new)


def _netfilter_h(ctx: Context) -> None:
    view = ctx.view
    cf = view.parse(NETFILTER_H)
    include = _after_includes(cf)
    hunks = "c/netfilter_h_hunks.j2"
    member = cedit.insert_members_first(cf, "nf_hook_entries",
                                        ctx.renderer.render_block(hunks, "entries_member"))
    slow_list = cedit.require_function(view, NETFILTER_H, "nf_hook_slow_list", definition=False)
    hook = cedit.require_function(view, NETFILTER_H, "nf_hook")
    view.edit(NETFILTER_H, [
        Edit(include, include, ctx.renderer.render_block(hunks, "include")),
        member,
        Edit(slow_list.end, slow_list.end, "\n" + ctx.renderer.render(
            "c/nf_hook_entries_run.h.j2").rstrip("\n")),
        _rename_call(cf, hook, "nf_hook_slow", "nf_hook_entries_run"),
    ])


def _line_edit(cf: CFile, fn: Function, pattern: str, text: str, *, before: bool,
               indent: str | None = None) -> Edit:
    """Insert lines before or after the one line of ``fn`` matching ``pattern``.

    The new lines take that line's indentation unless ``indent`` is given.
    """
    start, end = cedit.statement_after(cf, fn, pattern)
    indent = cf.indent_at(start) if indent is None else indent
    pos = start if before else end
    return Edit(pos, pos, "".join(f"{indent}{line}\n" if line else "\n"
                                  for line in text.split("\n")))


def _core_c(view: TreeView) -> str:
    """The generator's calls in core.c; returns the function that
    unregisters a hook."""
    cf = view.parse(CORE_C)
    include = _after_includes(cf)

    def fn(name: str) -> Function:
        return cedit.require_function(view, CORE_C, name)

    remove = fn("nf_remove_net_hook")
    blob = str(remove.params[0].name)
    free = fn("nf_hook_entries_free")
    shrink = fn("__nf_hook_entries_try_shrink")
    shrink_edits = _shrink_edits(cf, shrink)
    view.edit(CORE_C, [
        Edit(include, include, "#include <net/netfilter/nf_hook_bpf.h>\n"),
        _line_edit(cf, fn("__nf_register_net_hook"), r"rcu_assign_pointer\(\*pp, new_hooks\);",
                   "nf_hook_bpf_attach(new_hooks);", before=True),
        *shrink_edits,
        _line_edit(cf, remove, r"WRITE_ONCE\(orig_ops\[i\], \(void \*\)&dummy_ops\);",
                   f"nf_hook_bpf_detach({blob});", before=False),
        # After "if (!e) return;", at the level of the function body.
        _line_edit(cf, free, r"return;", "\nnf_hook_bpf_detach(e);", before=False, indent="\t"),
        _rename_call(cf, fn("nf_hook_slow_list"), "nf_hook_slow", "nf_hook_entries_run"),
    ])
    return _unregister(cf, shrink)


def _unregister(cf: CFile, shrink: Function) -> str:
    """The function that unregisters a hook: the caller of ``shrink`` with a struct net."""
    for call in cf.calls(shrink.name):
        caller = cf.enclosing(call.name_start)
        if caller is not None and _net_of(cf, call) is not None:
            return caller.name
    raise RecipeError(f"{CORE_C}: no caller of {shrink.name}() has a struct net: "
                      "no hook unregistration to rebuild the program for")


def _shrink_edits(cf: CFile, shrink: Function) -> list[Edit]:
    """A shrunk blob gets a program only where the caller says so: hook
    unregistration (the caller with a struct net) does, the NAT lookup
    blobs (nf_hook_entries_delete_raw()), which no program runs, do not."""
    edits = [cedit.reflow_params(cf, shrink, [p.text for p in shrink.params] + ["bool recompile"]),
             _line_edit(cf, shrink, r"hooks_validate\(new\);",
                        "if (recompile)\n\tnf_hook_bpf_attach(new);", before=False)]
    # The kernel-doc right above the function, nobody else's.
    comment = cf.comment_before(shrink.start)
    doc = re.search(r"^ \* @pp -- [^\n]*\n", comment.text, re.M) if comment else None
    if comment is not None and doc is not None:
        edits.append(Edit(comment.start + doc.end(), comment.start + doc.end(),
                          " * @recompile -- generate a bpf program for the new blob\n"))
    edits += [Edit(call.close, call.close,
                   ", true" if _net_of(cf, call) is not None else ", false")
              for call in cf.calls(shrink.name)]
    return edits


def _net_of(cf: CFile, call: Call) -> str | None:
    """The struct net parameter of the function that makes ``call``."""
    caller = cf.enclosing(call.name_start)
    return next((str(p.name) for p in caller.params if p.type == "struct net *"), None) \
        if caller else None


# -- patch 7 --------------------------------------------------------------------------
def dying_netns(ctx: Context) -> dict[str, Any]:
    """Hook unregistration stops rebuilding programs once its netns is dying."""
    view = ctx.view
    cf = view.parse(CORE_C)
    shrink = cedit.require_function(view, CORE_C, "__nf_hook_entries_try_shrink")
    edits = []
    for call in cf.calls(shrink.name):
        net = _net_of(cf, call)
        if net is None:
            continue
        last = call.args[-1] if call.args else None
        if last is None or last.text.strip() != "true":
            raise RecipeError(f"{CORE_C}:{cf.line_of(call.name_start)}: "
                              f"{shrink.name}() without 'true' to replace")
        edits.append(Edit(last.start, last.end, f"check_net({net})"))
    unregister = _unregister(cf, shrink)
    view.edit(CORE_C, edits)
    return {"unregister": unregister}



# -- patch 8 --------------------------------------------------------------------------
def netdev_bpf(ctx: Context) -> dict[str, Any]:
    path = ctx.facts.netdev_header
    if path is None:
        raise RecipeError("no netfilter_netdev.h (or netfilter_ingress.h) in this tree")
    view = ctx.view
    cf = view.parse(path)
    names = ["nf_hook_ingress"] + (["nf_hook_egress"] if ctx.facts.has_egress_hook else [])
    view.edit(path, [_rename_call(cf, cedit.require_function(view, path, n), "nf_hook_slow",
                                  "nf_hook_entries_run") for n in names])
    return {"egress": ctx.facts.has_egress_hook}


# -- patch 9 --------------------------------------------------------------------------
def prog_cache(ctx: Context) -> dict[str, Any]:
    """Share programs between locations with the same hooks: the cache
    (templates/c/nf_hook_bpf_cache.c.j2) replaces patch 6's get and put."""
    view = ctx.view
    cf = view.parse(ctx.runtime.generator)
    if cf.function("nf_hook_bpf_key") is not None:
        raise RecipeError(f"{cf.path} has a program cache already")
    def part(block: str) -> str:
        return ctx.renderer.render_block("c/nf_hook_bpf_cache.c.j2", block)

    comment = _leading_comment_end(cf)
    view.edit(cf.path, [Edit(comment, comment, part("comment")),
                        *_include_edits(cf, part("includes")),
                        _replace_get_put(view, cf, part("cache"))])
    return {"dispatcher_max": ctx.facts.dispatcher_max or "BPF_DISPATCHER_MAX"}


def _leading_comment_end(cf: CFile) -> int:
    """Offset of the " */" line that closes the comment at the top of the file."""
    first = cf.comments[0] if cf.comments else None
    block = next((c for c in cf.comments if c.text.startswith("/*")), None)
    code = min([t.start for t in cf.tokens[:1] + cf.directives[:1]] or [len(cf.text)])
    # "// SPDX..." lines, then the block comment, before any code or directive.
    if first is None or first.start != 0 or block is None or block.end > code or \
            not cf.text[block.start:block.end + 1].endswith("\n */\n"):
        raise RecipeError(f"{cf.path}: no comment at the top of the file")
    return cf.line_start(block.end - 1)


def _include_edits(cf: CFile, lines: str) -> list[Edit]:
    """Each of ``lines`` (#include lines) at its place in the sorted include block."""
    first_code = cf.tokens[0].start if cf.tokens else len(cf.text)
    block = [d for d in cf.directives if d.text.startswith("#include") and d.start < first_code]
    if not block:
        raise RecipeError(f"{cf.path}: no #include block")
    edits = []
    for line in lines.splitlines(keepends=True):
        after = next((d.start for d in block if d.text > line.rstrip("\n")), None)
        pos = after if after is not None else block[-1].end + 1
        edits.append(Edit(pos, pos, line))
    return edits


def _replace_get_put(view: TreeView, cf: CFile, cache: str) -> Edit:
    """nf_hook_bpf_get() and nf_hook_bpf_put(), one after the other, replaced."""
    get = cedit.require_function(view, cf.path, "nf_hook_bpf_get")
    put = cedit.require_function(view, cf.path, "nf_hook_bpf_put")
    if cf.text[get.end:put.start].strip():
        raise RecipeError(f"{cf.path}: something between nf_hook_bpf_get() and "
                          "nf_hook_bpf_put(); the cache replaces the two")
    return Edit(get.start, cf.text.index("\n", put.end) + 1, cache)
