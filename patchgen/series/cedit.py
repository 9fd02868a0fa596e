"""Small, checked edits on kernel C, built on ``patchgen.csrc``.

Each helper locates what it changes from the code's structure and raises
``RecipeError`` naming the file and what was expected when the tree does
not look that way; nothing is ever edited by guesswork.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from patchgen.csrc import CFile, Edit, Function, Param
from patchgen.series.view import RecipeError, TreeView

MAX_COLUMNS = 100  # checkpatch's limit
WRAP_COLUMNS = 80  # what coding-style.rst still prefers: lists are rewrapped to it
_KEYWORDS = {"return", "if", "for", "while", "switch", "do", "goto", "case", "else", "break",
             "continue", "default"}
_DECL = re.compile(
    r"^(?:(?:const|static|volatile|unsigned|signed|struct|union|enum)\s+)*"
    r"[A-Za-z_][A-Za-z0-9_]*(?:\s+|\s*\*+\s*)\**[A-Za-z_][A-Za-z0-9_]*\s*(?:\[[^]]*\])?\s*[=;,]",
)



def is_declaration(code: str) -> bool:
    """Whether a statement's comment-free text declares a variable."""
    return _DECL.match(code) is not None and code.split()[0] not in _KEYWORDS


def require_function(view: TreeView, path: str, name: str, *, definition: bool = True) -> Function:
    fn = view.parse(path).function(name, definition=definition)
    if fn is None:
        kind = "definition" if definition else "prototype"
        raise RecipeError(f"{path}: no {kind} of {name}()")
    return fn


def body(fn: Function) -> tuple[int, int]:
    if fn.body_open is None or fn.body_close is None:
        raise RecipeError(f"{fn.name}() has no body")
    return fn.body_open, fn.body_close


# -- structs ----------------------------------------------------------------------
def struct_body(cf: CFile, name: str) -> tuple[int, int]:
    """(offset after "{", offset of "}") of ``struct name { ... }``."""
    toks = cf.tokens
    for i in range(len(toks) - 2):
        if toks[i].text == "struct" and toks[i + 1].text == name and toks[i + 2].text == "{":
            close = cf.matching(i + 2)
            return toks[i + 2].end, toks[close].start
    raise RecipeError(f"{cf.path}: no definition of struct {name}")


def code_lines(cf: CFile, start: int, end: int, pattern: str) -> list[tuple[int, int]]:
    """(start, end incl. newline) of each line in [start, end) whose code begins
    with ``pattern``.  The lines are read from ``cf.code``, where comments and
    string contents are blanks, so a commented-out line never matches; the
    offsets are the same in ``cf.text``."""
    rx = re.compile(rf"^[ \t]*{pattern}[^\n]*\n", re.M)
    return [(start + m.start(), start + m.end()) for m in rx.finditer(cf.code[start:end])]


def member_line(cf: CFile, struct: str, pattern: str) -> tuple[int, int]:
    """(start, end incl. newline) of the one line in the struct matching ``pattern``."""
    start, end = struct_body(cf, struct)
    found = code_lines(cf, start, end, pattern)
    if len(found) != 1:
        raise RecipeError(f"{cf.path}: expected one member matching {pattern!r} in struct "
                          f"{struct}, found {len(found)}")
    return found[0]


def insert_member_after(cf: CFile, struct: str, pattern: str, text: str) -> Edit:
    _, end = member_line(cf, struct, pattern)
    return Edit(end, end, text)


def insert_members_first(cf: CFile, struct: str, text: str) -> Edit:
    start, _ = struct_body(cf, struct)
    return Edit(start, start, "\n" + text.rstrip("\n"))


def remove_member(cf: CFile, struct: str, pattern: str) -> Edit:
    start, end = member_line(cf, struct, pattern)
    return Edit(start, end, "")


# -- parameters and arguments ----------------------------------------------------------
def drop_item(items: Sequence[Param], index: int, what: str) -> Edit:
    """Remove one parameter or argument together with its separating comma."""
    if not 0 <= index < len(items):
        raise RecipeError(f"{what}: no item {index + 1} to remove (has {len(items)})")
    if index > 0:
        return Edit(items[index - 1].end, items[index].end, "")
    if len(items) > 1:
        return Edit(items[0].start, items[1].start, "")
    return Edit(items[0].start, items[0].end, "")


def reflow_params(cf: CFile, fn: Function, params: Sequence[str]) -> Edit:
    """Rewrite a parameter list, aligned under the "(" like the kernel does."""
    line_start = cf.line_start(fn.params_open)
    column = _columns(cf.text[line_start:fn.params_open + 1])
    return Edit(fn.params_open + 1, fn.params_close, wrap_list(params, column))


def wrap_list(items: Sequence[str], column: int) -> str:
    """Join items with ", ", breaking lines before WRAP_COLUMNS, aligned at ``column``."""
    lines: list[str] = []
    current = ""
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        candidate = f"{current} {piece}" if current else piece
        # +1 for the closing parenthesis and what usually follows it.
        if current and column + len(candidate) + 2 > WRAP_COLUMNS:
            lines.append(current)
            current = piece
        else:
            current = candidate
    lines.append(current)
    indent = "\t" * (column // 8) + " " * (column % 8)
    return ("\n" + indent).join(lines)


def _columns(prefix: str) -> int:
    col = 0
    for ch in prefix:
        col = (col // 8 + 1) * 8 if ch == "\t" else col + 1
    return col


def line_columns(line: str) -> int:
    return _columns(line)


# -- statements -----------------------------------------------------------------------
def insert_before_statement(cf: CFile, offset: int, lines: Sequence[str]) -> Edit:
    """Insert whole lines before the statement containing ``offset``, same indentation."""
    stmt = cf.statement_start(offset)
    line_start = cf.line_start(stmt)
    if cf.text[line_start:stmt].strip():
        raise RecipeError(f"{cf.path}:{cf.line_of(offset)}: statement does not start a line")
    indent = cf.indent_at(stmt)
    return Edit(line_start, line_start, "".join(f"{indent}{line}\n" for line in lines))


def first_item_is_declaration(cf: CFile, fn: Function) -> bool:
    """Whether the body opens with a declaration (not a comment, #if or statement)."""
    start, end = body(fn)
    first = cf.next_token(start + 1)
    if first is None or first.start >= end:
        return False
    if any(start < t.start < first.start for t in (*cf.comments, *cf.directives)):
        return False
    if first.kind != "ident" or first.text in _KEYWORDS:
        return False
    return _DECL.match(cf.code[first.start:end]) is not None


def insert_declarations(cf: CFile, fn: Function, decls: Sequence[str]) -> Edit:
    """Declarations at the top of the body, with the blank line checkpatch wants."""
    start, _ = body(fn)
    indent = "\t"
    text = "".join(f"\n{indent}{d}" for d in decls)
    if not first_item_is_declaration(cf, fn):
        text += "\n"
    return Edit(start + 1, start + 1, text)


def statement_after(cf: CFile, fn: Function, pattern: str) -> tuple[int, int]:
    """(start, end incl. newline) of the line in ``fn``'s body matching ``pattern``."""
    start, end = body(fn)
    found = code_lines(cf, start, end, pattern)
    if len(found) != 1:
        raise RecipeError(f"{cf.path}: expected one line matching {pattern!r} in {fn.name}(), "
                          f"found {len(found)}")
    return found[0]


@dataclass(frozen=True)
class StateRef:
    """How code refers to a struct nf_hook_state: through a pointer or by value."""

    expr: str  # "state", "&state", "&entry->state"

    def member(self, name: str) -> str:
        if self.expr.startswith("&"):
            return f"{self.expr[1:].strip()}.{name}"
        return f"{self.expr}->{name}"
