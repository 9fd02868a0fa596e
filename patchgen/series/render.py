"""Jinja2 rendering of C snippets and commit messages from ``templates/``."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import jinja2


def indent_to(column: int) -> str:
    """Leading whitespace reaching ``column`` the kernel way: tabs, then spaces."""
    return "\t" * (column // 8) + " " * (column % 8)


MESSAGE_WIDTH = 72
_TRAILER = re.compile(r"^[A-Z][A-Za-z-]+: ")
_ITEM = re.compile(r"^( ?- )")


def _wrap_items(lines: list[str]) -> str | None:
    """A list (" - item", continuation lines indented under the text), each
    item rewrapped with a hanging indent; None if ``lines`` is not a list."""
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        m = _ITEM.match(line)
        if m:
            items.append((m.group(1), [line[m.end():]]))
        elif items and line.startswith(" " * len(items[-1][0])) and line.strip():
            items[-1][1].append(line.strip())
        else:
            return None
    return "\n".join(textwrap.fill(" ".join(words), MESSAGE_WIDTH, initial_indent=marker,
                                   subsequent_indent=" " * len(marker),
                                   break_long_words=False, break_on_hyphens=False)
                     for marker, words in items)


def wrap_message(text: str) -> str:
    """Rewrap prose paragraphs of a commit message to 72 columns.

    Templates interpolate names of varying length, so their paragraphs are
    reflowed after rendering; so are lists (" - item"), with a hanging
    indent.  The subject, indented blocks (code) and trailers are kept as
    they are.
    """
    subject, _, rest = text.partition("\n")
    paragraphs = re.split(r"\n[ \t]*\n", rest.strip("\n"))
    out = []
    for para in paragraphs:
        lines = para.split("\n")
        prose = all(line and not line[0].isspace() and not line.startswith(("- ", "* "))
                    and not _TRAILER.match(line) for line in lines)
        items = _wrap_items(lines)
        if prose:
            out.append(textwrap.fill(" ".join(lines), MESSAGE_WIDTH,
                                     break_long_words=False, break_on_hyphens=False))
        elif items is not None:
            out.append(items)
        else:
            out.append(para)
    return subject + "\n\n" + "\n\n".join(out) + "\n"


class Renderer:
    def __init__(self, templates_dir: Path) -> None:
        self.dir = templates_dir
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        self.env.filters["indent_to"] = indent_to
        # HTML pages show test output: escaped, and (as Jinja's default)
        # without the template's final newline.
        self._pages = self.env.overlay(autoescape=True, keep_trailing_newline=False)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def render_block(self, name: str, block: str, **context: Any) -> str:
        """One ``{% block %}`` of a template: templates of hunks hold the
        pieces of one change that go to different places of existing files."""
        template = self.env.get_template(name)
        return "".join(template.blocks[block](template.new_context(context)))

    def page(self, name: str, **context: Any) -> str:
        """An HTML page: every value HTML-escaped."""
        return self._pages.get_template(name).render(**context)

    def message(self, name: str, **context: Any) -> str:
        return wrap_message(self.render(name, **context))
