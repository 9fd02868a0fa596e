// Functions netfilter runs as hooks, found by Coccinelle: an independent
// check of patchgen's hook discovery (patchgen/series/hooks.py), run by the
// real tier (tests/slow/test_cocci_hooks.py) on a real tree.
//
// A hook is a function with the hook signature
//   (void *, struct sk_buff *, const struct nf_hook_state *)
// that is registered, the ways the kernel registers one:
//   - .hook = fn in a struct nf_hook_ops initializer (one or an array),
//     also through a cast;
//   - ops->hook = fn or ops.hook = fn on a struct nf_hook_ops;
//   - xt_hook_ops_alloc(table, fn) (the x_tables tables);
//   - .hooks = { [NF_INET_...] = fn } of a struct nft_chain_type;
//   - .hook = fn of a struct nf_flowtable_type;
// or that a hook calls with three arguments (repeated until nothing changes).
// finalize prints the names, one a line, sorted: run with --jobs 1 so that
// one Python interpreter sees every file.

@initialize:python@
@@
signature = set()
registered = set()
calls = set()

@sig@
identifier fn, p, s, st;
type T;
@@
T fn(void *p, struct sk_buff *s, const struct nf_hook_state *st) { ... }

@script:python@
fn << sig.fn;
@@
signature.add(fn)

// A prototype counts as patchgen counts it: Coccinelle cannot parse some
// definitions (ipt_do_table()'s body, for one) but reads the header's.
@proto@
identifier fn, p, s, st;
type T;
@@
T fn(void *p, struct sk_buff *s, const struct nf_hook_state *st);

@script:python@
fn << proto.fn;
@@
signature.add(fn)

@proto_unnamed@
identifier fn;
type T;
@@
T fn(void *, struct sk_buff *, const struct nf_hook_state *);

@script:python@
fn << proto_unnamed.fn;
@@
signature.add(fn)

@ops_array@
identifier fn, I;
@@
struct nf_hook_ops I[...] = { ..., { ..., .hook = fn, ... }, ... };

@script:python@
fn << ops_array.fn;
@@
registered.add(fn)

@ops_array_cast@
identifier fn, I;
type T;
@@
struct nf_hook_ops I[...] = { ..., { ..., .hook = (T)fn, ... }, ... };

@script:python@
fn << ops_array_cast.fn;
@@
registered.add(fn)

@ops_one@
identifier fn, I;
@@
struct nf_hook_ops I = { ..., .hook = fn, ... };

@script:python@
fn << ops_one.fn;
@@
registered.add(fn)

@ops_one_cast@
identifier fn, I;
type T;
@@
struct nf_hook_ops I = { ..., .hook = (T)fn, ... };

@script:python@
fn << ops_one_cast.fn;
@@
registered.add(fn)

@assigned@
struct nf_hook_ops *o;
struct nf_hook_ops p;
identifier fn;
@@
(
o->hook = fn
|
p.hook = fn
)

@script:python@
fn << assigned.fn;
@@
registered.add(fn)

@xt_alloc@
identifier fn;
expression T;
@@
xt_hook_ops_alloc(T, fn)

@script:python@
fn << xt_alloc.fn;
@@
registered.add(fn)

@nft_chain@
identifier fn, I;
expression H;
@@
struct nft_chain_type I = { ..., .hooks = { ..., [H] = fn, ... }, ... };

@script:python@
fn << nft_chain.fn;
@@
registered.add(fn)

// A flowtable type's hook: nf_tables copies it into the ops it registers.
@flowtable@
identifier fn, I;
@@
struct nf_flowtable_type I = { ..., .hook = fn, ... };

@script:python@
fn << flowtable.fn;
@@
registered.add(fn)

@called@
identifier caller, callee, p, s, st;
type T;
expression a, b, c;
@@
T caller(void *p, struct sk_buff *s, const struct nf_hook_state *st) {
<+... callee(a, b, c) ...+>
}

@script:python@
caller << called.caller;
callee << called.callee;
@@
calls.add((caller, callee))

@finalize:python@
@@
hooks = registered & signature
grown = True
while grown:
    more = {callee for caller, callee in calls if caller in hooks and callee in signature}
    grown = not more <= hooks
    hooks |= more
for name in sorted(hooks):
    print(name)
