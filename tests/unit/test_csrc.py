"""The token-level C scanner on kernel-shaped code."""

from __future__ import annotations

import pytest

from patchgen.csrc import CFile, CSyntaxError, Edit, apply_edits, tokenize

SRC = r'''
// SPDX-License-Identifier: GPL-2.0
#include <linux/netfilter.h>
#define WEIRD(x) { x(
static const char *msg = "not a call: foo(a, b);";

/* foo(priv, skb, state) in a comment */
static unsigned int __net_init
foo(void *priv, struct sk_buff *skb,
    const struct nf_hook_state *state)
{
	struct xt_table *table = priv;
	int (*fp)(int) = NULL;

	switch (state->hook) {
	case NF_INET_LOCAL_IN:
		bar(skb, state->hook ? 1 : 2);
		break;
	}
#ifdef CONFIG_XFRM
	if (skb->sp)
		return baz(priv, skb, state);
#endif
	return NF_ACCEPT;
}
EXPORT_SYMBOL_GPL(foo);

unsigned int foo_proto(void *, struct sk_buff *, const struct nf_hook_state *);

static const struct nf_hook_ops ops[] = {
	{
		.hook		= foo,
		.pf		= NFPROTO_IPV4,
	},
};
'''


def test_tokens_skip_comments_strings_and_directives() -> None:
    toks = tokenize(SRC)
    idents = [t.text for t in toks if t.kind == "ident"]
    assert "msg" in idents
    assert idents.count("foo") == 3  # definition, EXPORT_SYMBOL_GPL, .hook =
    assert any(t.kind == "pp" and t.text.startswith("#define WEIRD") for t in toks)
    assert any(t.kind == "string" and "foo(a, b)" in t.text for t in toks)


def test_functions_definitions_and_prototypes() -> None:
    cf = CFile.parse("x.c", SRC)
    names = [(f.name, f.is_definition) for f in cf.functions()]
    assert names == [("foo", True), ("foo_proto", False)]
    foo = cf.function("foo")
    assert foo is not None
    assert foo.param_types() == ("void *", "struct sk_buff *", "const struct nf_hook_state *")
    assert [p.name for p in foo.params] == ["priv", "skb", "state"]
    assert SRC[foo.start:foo.name_start].split() == ["static", "unsigned", "int", "__net_init"]
    proto = cf.function("foo_proto", definition=False)
    assert proto is not None and [p.name for p in proto.params] == [None, None, None]
    assert proto.param_types() == foo.param_types()


def test_calls_and_arguments() -> None:
    cf = CFile.parse("x.c", SRC)
    (bar,) = cf.calls("bar")
    assert bar.arg_texts == ("skb", "state->hook ? 1 : 2")
    (baz,) = cf.calls("baz")
    assert baz.arg_texts == ("priv", "skb", "state")


def test_value_uses_are_not_calls() -> None:
    cf = CFile.parse("x.c", SRC)
    uses = [t for t in cf.references("foo") if cf.is_value_use(t)]
    assert len(uses) == 2  # EXPORT_SYMBOL_GPL(foo) and .hook = foo; "foo(" is not a value
    prev = cf.prev_token(uses[-1].start)
    assert prev is not None and prev.text == "="


def test_statement_start_stops_at_case_label_not_ternary() -> None:
    cf = CFile.parse("x.c", SRC)
    (bar,) = cf.calls("bar")
    start = cf.statement_start(bar.name_start)
    assert SRC[start:start + 4] == "bar("


def test_conditional_regions() -> None:
    cf = CFile.parse("x.c", SRC)
    (baz,) = cf.calls("baz")
    (bar,) = cf.calls("bar")
    assert cf.in_conditional(baz.name_start)
    assert not cf.in_conditional(bar.name_start)
    (region,) = cf.conditional_ranges()
    assert region[2] == "#ifdef CONFIG_XFRM"


def test_unbalanced_brackets_are_reported() -> None:
    with pytest.raises(CSyntaxError, match="unbalanced"):
        CFile.parse("bad.c", "int f(void) { return (1; }")


def test_apply_edits_rejects_overlaps() -> None:
    assert apply_edits("abcdef", [Edit(1, 2, "X"), Edit(4, 4, "Y")]) == "aXcdYef"
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits("abcdef", [Edit(1, 3, "X"), Edit(2, 4, "Y")])


def test_a_definition_is_not_a_call_of_itself() -> None:
    src = "int f(int a, int b);\nint f(int a, int b)\n{\n\treturn g(f(a, b));\n}\n"
    cf = CFile.parse("x.c", src)
    calls = cf.calls("f")
    assert len(calls) == 1 and calls[0].arg_texts == ("a", "b")


# -- defects of issue 14 item 5: each test failed before its fix -----------------------
BOTH_BRANCHES = """\
static int a;

#if IS_ENABLED(CONFIG_IPV6)
static unsigned int f(void *priv, struct sk_buff *skb, const struct nf_hook_state *state)
{
	if (state->pf == NFPROTO_IPV6) {
#else
static unsigned int f(void *priv, struct sk_buff *skb, const struct nf_hook_state *state)
{
	if (state->pf == NFPROTO_IPV4) {
#endif
		g(skb);
	}
	return NF_ACCEPT;
}

static int h(int x)
{
#ifdef CONFIG_X
	if (x) {
#elif defined(CONFIG_Y)
	if (!x) {
#else
	{
#endif
		x++;
	}
	return k(x, (x + 1));
}
"""


def test_a_brace_opened_in_both_branches_of_an_if_parses() -> None:
    cf = CFile.parse("x.c", BOTH_BRANCHES)
    assert [(f.name, f.is_definition) for f in cf.functions()] == [("f", True), ("h", True)]
    f = cf.function("f")
    assert f is not None and f.body_close is not None
    assert BOTH_BRANCHES[f.body_close:f.end] == "}"
    assert BOTH_BRANCHES.count("\n", 0, f.body_close) == 14  # the last "}" of f
    (g,) = cf.calls("g")
    assert cf.enclosing(g.name_start) == f
    (k,) = cf.calls("k")
    assert k.arg_texts == ("x", "(x + 1)")
    assert cf.enclosing(k.name_start) == cf.function("h")


def test_a_brace_closed_in_both_branches_of_an_if_parses() -> None:
    src = "int f(int x)\n{\n\tif (x) {\n#ifdef A\n\t}\n#else\n\t}\n#endif\n\treturn 0;\n}\n"
    cf = CFile.parse("x.c", src)
    (f,) = cf.functions()
    assert f.name == "f" and f.end == len(src) - 1


def test_unnamed_parameters_have_no_name() -> None:
    src = "void f(bool, size_t, const bool, struct net *, int (*)(int), u32 len, bool on);\n"
    (f,) = CFile.parse("x.h", src).functions()
    assert [p.name for p in f.params] == [None, None, None, None, None, "len", "on"]
    assert f.param_types()[:3] == ("bool", "size_t", "const bool")
    assert f.param_types()[5:] == ("u32", "bool")


def test_a_comment_inside_a_parameter_is_not_its_name_or_type() -> None:
    src = "void f(struct sk_buff * /* the packet */ skb, int /* no name */);\n"
    (f,) = CFile.parse("x.h", src).functions()
    assert [p.name for p in f.params] == ["skb", None]
    assert f.param_types() == ("struct sk_buff *", "int")


@pytest.mark.parametrize(("src", "where"), [
    ("int a;\n\nint f(void)\n{\n\treturn (1;\n}\n", r"bad\.c:6: unbalanced '\}'"),
    ("int a;\nint f(void)\n{\n\treturn 1;\n", r"bad\.c:3: unclosed '\{'"),
    ("int a;\nint b = 1 @ 2;\n", r"bad\.c:2: cannot tokenize"),
])
def test_syntax_errors_name_file_and_line(src: str, where: str) -> None:
    with pytest.raises(CSyntaxError, match=where):
        CFile.parse("bad.c", src)
