from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from patchgen.series.render import Renderer, indent_to, wrap_message


def test_wrap_message_reflows_prose_only() -> None:
    text = ("subject: stays as it is even if it is long enough to wrap at seventy-two\n\n"
            "A paragraph that came out of a template with a long interpolated_name_here "
            "and\nshort lines.\n\n"
            " - a list item stays\n - another one\n\n"
            "  typedef unsigned int nf_hookfn(const struct nf_hook_state *state);\n\n"
            "Signed-off-by: A Person <a@example.org>\n")
    out = wrap_message(text).split("\n")
    assert out[0].startswith("subject: stays")
    assert all(len(line) <= 72 for line in out[1:])
    assert " - a list item stays" in out
    assert "  typedef unsigned int nf_hookfn(const struct nf_hook_state *state);" in out
    assert out[-2] == "Signed-off-by: A Person <a@example.org>"


def test_indent_to_uses_tabs_then_spaces() -> None:
    assert indent_to(21) == "\t\t     "
    assert indent_to(8) == "\t"


def test_pages_are_escaped_and_code_is_not(tmp_path: Path) -> None:
    """One environment: HTML pages through an autoescaping overlay of it."""
    (tmp_path / "t.j2").write_text("{{ v }}\n")
    r = Renderer(tmp_path)
    assert r.render("t.j2", v="a < b") == "a < b\n"
    assert r.page("t.j2", v="a < b") == "a &lt; b"
    with pytest.raises(jinja2.UndefinedError):
        r.page("t.j2")
