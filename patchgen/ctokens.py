"""The immutable token index of a C file: tokens, brackets, lines, conditionals.

``TokenIndex.build`` reads a file once; nothing changes it afterwards, so
every range derived from it (bracket pairs, enclosing brackets, line
starts, ``#if`` regions, the comment-free text) is computed once and shared
by all queries (``patchgen.csrc``).  Comments, strings and preprocessor
directives are tokens of their own: code queries never see inside them.

Brackets are matched the way the preprocessor sees them, one branch of an
``#if`` at a time: ``if (a) {`` in the ``#if`` branch and ``if (b) {`` in
the ``#else`` branch open one block, closed by the one ``}`` after
``#endif``.  Errors name the file and line, never an offset.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+|\\\n)
  | (?P<nl>\n)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<char>'(?:\\.|[^'\\\n])+')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*)
  | (?P<punct>->|\+\+|--|<<=|>>=|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^!=<>]=|\.\.\.|\#\#
              |[][(){};,.?:~!%^&*+\-=<>/|#])
    """,
    re.X | re.S,
)
_DIRECTIVE = re.compile(r"[ \t]*#")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class CSyntaxError(Exception):
    """The file cannot be read as C tokens with balanced brackets: says file:line."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, char, punct, pp, comment
    text: str
    start: int
    end: int


def line_starts(text: str) -> tuple[int, ...]:
    return (0, *(m.end() for m in re.finditer(r"\n", text)))


def tokenize(text: str, path: str = "<text>") -> list[Token]:
    """Code tokens, plus one "pp" token per preprocessor directive and comments."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    at_line_start = True
    while pos < n:
        if at_line_start and _DIRECTIVE.match(text, pos):
            end = _directive_end(text, pos)
            tokens.append(Token("pp", text[pos:end], pos, end))
            pos = end
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise CSyntaxError(f"{path}:{line}: cannot tokenize {text[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        if kind == "nl":
            at_line_start = True
        elif kind != "ws":
            at_line_start = False
            tokens.append(Token(kind, m.group(), m.start(), m.end()))
        pos = m.end()
    return tokens


def _directive_end(text: str, pos: int) -> int:
    """End of a directive: the newline not escaped and not inside a comment."""
    i, n = pos, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":
            i += 2
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "\n":
            return i
        else:
            i += 1
    return n


def directive_word(text: str) -> str:
    m = re.match(r"\s*#\s*([a-z]+)", text)
    return m.group(1) if m else ""


@dataclass(frozen=True, eq=False)
class TokenIndex:
    """One C file as tokens; immutable, so derived ranges are cached on it."""

    path: str
    text: str
    tokens: tuple[Token, ...]  # code tokens only
    directives: tuple[Token, ...]
    comments: tuple[Token, ...]
    match: Mapping[int, int]  # token index of a bracket -> index of its partner
    parent: tuple[int, ...]  # token index -> index of its innermost open bracket, or -1

    @classmethod
    def build(cls, path: str, text: str) -> TokenIndex:
        everything = tokenize(text, path)
        tokens = tuple(t for t in everything if t.kind not in ("pp", "comment"))
        directives = tuple(t for t in everything if t.kind == "pp")
        brackets = _Brackets(path, text, tokens)
        brackets.run(directives)
        return cls(path, text, tokens, directives,
                   tuple(t for t in everything if t.kind == "comment"),
                   MappingProxyType(brackets.match), tuple(brackets.parent))

    # -- positions ----------------------------------------------------------------
    @cached_property
    def _starts(self) -> tuple[int, ...]:
        return tuple(t.start for t in self.tokens)

    @cached_property
    def _lines(self) -> tuple[int, ...]:
        return line_starts(self.text)

    def index_at(self, offset: int) -> int:
        """Index of the first code token starting at or after ``offset``."""
        return bisect.bisect_left(self._starts, offset)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._lines, offset)

    def where(self, offset: int) -> str:
        """``path:line`` of an offset: how every message names a place."""
        return f"{self.path}:{self.line_of(offset)}"

    def line_start(self, offset: int) -> int:
        return self._lines[self.line_of(offset) - 1]

    def indent_at(self, offset: int) -> str:
        start = self.line_start(offset)
        m = re.match(r"[ \t]*", self.text[start:])
        return m.group() if m else ""

    def matching(self, index: int) -> int:
        if index not in self.match:
            raise CSyntaxError(f"{self.where(self.tokens[index].start)}: "
                               f"{self.tokens[index].text!r} is closed in no branch")
        return self.match[index]

    def next_token(self, offset: int) -> Token | None:
        i = self.index_at(offset)
        return self.tokens[i] if i < len(self.tokens) else None

    def prev_token(self, offset: int) -> Token | None:
        i = self.index_at(offset) - 1
        return self.tokens[i] if i >= 0 else None

    @cached_property
    def _comment_ends(self) -> tuple[int, ...]:
        return tuple(c.end for c in self.comments)

    def comment_before(self, offset: int) -> Token | None:
        """The comment that ends right before ``offset`` with only blanks between,
        such as the kernel-doc of a function."""
        i = bisect.bisect_right(self._comment_ends, offset) - 1
        if i >= 0 and not self.text[self.comments[i].end:offset].strip():
            return self.comments[i]
        return None

    # -- the comment-free text ------------------------------------------------------
    @cached_property
    def code(self) -> str:
        """The text with comments and the insides of string and character
        literals blanked (newlines kept): same length, same offsets, so a
        regular expression over it finds only code, at the offsets of ``text``."""
        chars = list(self.text)
        blank = [(c.start, c.end) for c in self.comments]
        blank += [(t.start + 1, t.end - 1) for t in self.tokens if t.kind in ("string", "char")]
        for d in self.directives:
            blank += [(d.start + m.start(), d.start + m.end())
                      for m in _TOKEN.finditer(d.text) if m.lastgroup == "comment"]
        for start, end in blank:
            for i in range(start, end):
                if chars[i] != "\n":
                    chars[i] = " "
        return "".join(chars)

    # -- preprocessor -----------------------------------------------------------------
    @cached_property
    def conditionals(self) -> tuple[tuple[int, int, str], ...]:
        """(start, end, condition) of every #if/#ifdef/#ifndef ... #endif region."""
        stack: list[tuple[int, str]] = []
        out = []
        for d in self.directives:
            word = directive_word(d.text)
            if word in ("if", "ifdef", "ifndef"):
                stack.append((d.start, d.text.strip()))
            elif word == "endif" and stack:
                start, cond = stack.pop()
                out.append((start, d.end, cond))
        return tuple(out)

    def in_conditional(self, offset: int, region: tuple[int, int] | None = None) -> bool:
        """Whether ``offset`` is inside a conditional that starts within ``region``."""
        return any(start <= offset < end and (region is None or region[0] <= start < region[1])
                   for start, end, _ in self.conditionals)


@dataclass
class _Branches:
    """An #if being matched: the open brackets before it and after its first branch."""

    entry: list[int]
    first: list[int] | None = None


class _Brackets:
    """Bracket matching that follows #if branches (see the module docstring)."""

    def __init__(self, path: str, text: str, tokens: Sequence[Token]) -> None:
        self.path, self.text, self.tokens = path, text, tokens
        self.match: dict[int, int] = {}
        self.parent: list[int] = []
        self.stack: list[int] = []
        self.ifs: list[_Branches] = []
        self.aliases: dict[int, int] = {}  # an #else branch's open -> the #if branch's

    def _error(self, i: int, what: str) -> CSyntaxError:
        line = self.text.count("\n", 0, self.tokens[i].start) + 1
        return CSyntaxError(f"{self.path}:{line}: {what} {self.tokens[i].text!r}")

    def run(self, directives: Sequence[Token]) -> None:
        d = 0
        for i, t in enumerate(self.tokens):
            while d < len(directives) and directives[d].start < t.start:
                self._directive(directive_word(directives[d].text))
                d += 1
            self.parent.append(self.stack[-1] if self.stack else -1)
            if t.text in _OPEN:
                self.stack.append(i)
            elif t.text in _CLOSE:
                self._close(i)
        if self.stack:
            raise self._error(self.stack[0], "unclosed")
        for other, first in self.aliases.items():
            if first in self.match:
                self.match[other] = self.match[first]

    def _close(self, i: int) -> None:
        if not self.stack or self.tokens[self.stack[-1]].text != _CLOSE[self.tokens[i].text]:
            raise self._error(i, "unbalanced")
        j = self.stack.pop()
        self.match[i] = j
        self.match.setdefault(j, i)  # closed again in an #else branch: the first close

    def _directive(self, word: str) -> None:
        if word in ("if", "ifdef", "ifndef"):
            self.ifs.append(_Branches(list(self.stack)))
        elif word in ("elif", "else") and self.ifs:
            top = self.ifs[-1]
            if top.first is None:
                top.first = self.stack
            else:
                self._alias(top.first)
            self.stack = list(top.entry)
        elif word == "endif" and self.ifs:
            top = self.ifs.pop()
            if top.first is not None:
                self._alias(top.first)
                self.stack = top.first

    def _alias(self, first: list[int]) -> None:
        """This branch's open brackets stand for the first branch's at the same depth."""
        for mine, theirs in zip(self.stack, first, strict=False):
            if mine != theirs:
                self.aliases[mine] = self.aliases.get(theirs, theirs)
