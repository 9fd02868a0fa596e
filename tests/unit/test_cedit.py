"""Recipe-level searches of C never match inside comments or strings."""

from __future__ import annotations

from patchgen.csrc import CFile
from patchgen.series import cedit, recipes
from patchgen.series.hooks import CallKind, classify_call

BODY = """\
struct nf_hook_state {
	/*
	u8 pf;  was here once
	*/
	u8 pf;
	const char *doc; /* "u8 pf;" */
};

static void f(struct sk_buff *skb)
{
	/*
	return;
	*/
	pr_debug("%s\\n",
		"return;");
	g(skb);
	return;
}
"""


def test_statement_after_skips_comment_and_string_lines() -> None:
    cf = CFile.parse("x.c", BODY)
    f = cf.function("f")
    assert f is not None
    start, end = cedit.statement_after(cf, f, r"return;")
    assert BODY[start:end] == "\treturn;\n"


def test_member_line_skips_comment_lines() -> None:
    cf = CFile.parse("x.c", BODY)
    start, end = cedit.member_line(cf, "nf_hook_state", r"u8\s+pf;")
    assert BODY[start:end] == "\tu8 pf;\n"


def test_a_state_declared_in_a_comment_is_not_a_local() -> None:
    src = """\
struct nf_hook_state shared;

static unsigned int hook(void *priv, struct sk_buff *skb, const struct nf_hook_state *state)
{
	/* not here: struct nf_hook_state shared; */
	return other(priv, skb, &shared);
}
"""
    cf = CFile.parse("x.c", src)
    (call,) = cf.calls("other")
    assert classify_call(cf, call, cf.function("hook"), {"hook", "other"}) == \
        (CallKind.UNSUPPORTED, None)


def test_a_goto_in_a_comment_keeps_no_label() -> None:
    src = """\
static int f(int x)
{
	if (x) {
		goto out;
	}
	/* no more goto out; here */
	return 0;
out:
	return 1;
}
"""
    cf = CFile.parse("x.c", src)
    f = cf.function("f")
    assert f is not None
    block = cf.text.index("{", cf.text.index("if (x)")), cf.text.index("}") + 1
    edits = recipes._drop_unused_label(cf, f, "out", block)
    assert [src[e.start:e.end] for e in edits] == ["out:\n"]
