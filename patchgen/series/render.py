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


def wrap_message(text: str) -> str:
    """Rewrap prose paragraphs of a commit message to 72 columns.

    Templates interpolate names of varying length, so their paragraphs are
    reflowed after rendering.  The subject, indented blocks (code), list
    items and trailers are kept as they are.
    """
    subject, _, rest = text.partition("\n")
    paragraphs = re.split(r"\n[ \t]*\n", rest.strip("\n"))
    out = []
    for para in paragraphs:
        lines = para.split("\n")
        prose = all(line and not line[0].isspace() and not line.startswith(("- ", "* "))
                    and not _TRAILER.match(line) for line in lines)
        if prose:
            out.append(textwrap.fill(" ".join(lines), MESSAGE_WIDTH,
                                     break_long_words=False, break_on_hyphens=False))
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

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def message(self, name: str, **context: Any) -> str:
        return wrap_message(self.render(name, **context))
