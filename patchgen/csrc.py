"""A token-level view of kernel C: enough structure to rewrite it safely.

Why not a full parser: kernel sources are full of macros (``__net_init``,
``EXPORT_SYMBOL_GPL(...)``, ``list_for_each_entry(...) {``) and ``#ifdef``
branches that a C grammar without the preprocessor mis-reads (tree-sitter
leaves ERROR nodes in nearly every netfilter file).  Every rewrite the
series needs is expressible on tokens with balanced brackets: find function
definitions and prototypes, their parameters and bodies, calls and their
arguments, other references to a name, and whether a position sits inside
a preprocessor conditional.  Comments, strings and directives are tokens of
their own, so nothing inside them is ever mistaken for code.

Edits are byte ranges with replacement text, applied together; overlapping
edits are an error, never silently merged.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

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
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {v: k for k, v in _OPEN.items()}


class CSyntaxError(Exception):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, char, punct, pp, comment
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Param:
    text: str
    start: int
    end: int

    @property
    def name(self) -> str | None:
        """The declared name (last identifier), or None for a bare type."""
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", self.text)
        if not words or self.text.strip() == "void":
            return None
        last: str = words[-1]
        # "struct sk_buff *" has no name: the last word is part of the type.
        type_words = {"struct", "union", "enum", "const", "volatile", "unsigned", "signed",
                      "int", "char", "long", "short", "void", "u8", "u16", "u32", "u64"}
        if last in type_words or re.search(r"(?:struct|union|enum)\s+" + last + r"\s*\**$",
                                           self.text.strip()):
            return None
        return last

    @property
    def type(self) -> str:
        """The type with the name removed and whitespace normalised."""
        text = self.text
        name = self.name
        if name is not None:
            text = text[: text.rfind(name)]
        return normalise_type(text)


def normalise_type(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*\*\s*", " *", text)
    return text.replace(" *", "*").replace("*", " *").replace("  ", " ").strip()


@dataclass(frozen=True)
class Function:
    name: str
    start: int  # first byte of the declaration (return type)
    name_start: int
    params_open: int  # offset of "("
    params_close: int  # offset of ")"
    params: tuple[Param, ...]
    body_open: int | None  # offset of "{" (None for a prototype)
    body_close: int | None
    end: int  # after "}" or ";"

    @property
    def is_definition(self) -> bool:
        return self.body_open is not None

    def param_types(self) -> tuple[str, ...]:
        return tuple(p.type for p in self.params)


@dataclass(frozen=True)
class Call:
    name: str
    name_start: int
    open: int
    close: int
    args: tuple[Param, ...]  # same shape: text and range

    @property
    def arg_texts(self) -> tuple[str, ...]:
        return tuple(" ".join(a.text.split()) for a in self.args)


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


def tokenize(text: str) -> list[Token]:
    """Code tokens, plus one "pp" token per preprocessor directive and comments."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    at_line_start = True
    while pos < n:
        if at_line_start:
            m = re.compile(r"[ \t]*#").match(text, pos)
            if m:
                end = _directive_end(text, pos)
                tokens.append(Token("pp", text[pos:end], pos, end))
                pos = end
                continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise CSyntaxError(f"cannot tokenize at offset {pos}: {text[pos:pos + 20]!r}")
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


@dataclass
class CFile:
    """A C source file, tokenized, with bracket matching and queries."""

    path: str
    text: str
    tokens: list[Token] = field(default_factory=list)  # code tokens only
    directives: list[Token] = field(default_factory=list)
    _match: dict[int, int] = field(default_factory=dict)
    _starts: list[int] = field(default_factory=list)
    _functions: list[Function] | None = None

    @classmethod
    def parse(cls, path: str, text: str) -> CFile:
        all_tokens = tokenize(text)
        f = cls(path, text)
        f.tokens = [t for t in all_tokens if t.kind not in ("pp", "comment")]
        f.directives = [t for t in all_tokens if t.kind == "pp"]
        f._starts = [t.start for t in f.tokens]
        f._match = _match_brackets(f.tokens, path)
        return f

    # -- positions ------------------------------------------------------------
    def index_at(self, offset: int) -> int:
        """Index of the first code token starting at or after ``offset``."""
        return bisect.bisect_left(self._starts, offset)

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1

    def line_start(self, offset: int) -> int:
        return self.text.rfind("\n", 0, offset) + 1

    def indent_at(self, offset: int) -> str:
        start = self.line_start(offset)
        m = re.match(r"[ \t]*", self.text[start:])
        return m.group() if m else ""

    def matching(self, index: int) -> int:
        return self._match[index]

    # -- functions --------------------------------------------------------------
    def functions(self) -> list[Function]:
        """Every function definition and prototype at file scope."""
        if self._functions is None:
            self._functions = list(self._scan_functions())
        return self._functions

    def enclosing(self, offset: int) -> Function | None:
        """The function definition whose body contains ``offset``."""
        for fn in self.functions():
            if fn.body_open is not None and fn.body_close is not None and \
                    fn.body_open < offset < fn.body_close:
                return fn
        return None

    def function(self, name: str, *, definition: bool = True) -> Function | None:
        for fn in self.functions():
            if fn.name == name and fn.is_definition == definition:
                return fn
        return None

    def _scan_functions(self) -> Iterator[Function]:
        toks = self.tokens
        depth = 0
        decl_start = 0
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.text == "{":
                if depth == 0 and not self._is_function_body(i):
                    # struct/union/enum/initializer at file scope: skip it whole.
                    i = self._match[i] + 1
                    continue
                depth += 1
            elif t.text == "}":
                depth -= 1
                if depth == 0:
                    decl_start = i + 1
            elif depth == 0 and t.text == ";":
                decl_start = i + 1
            elif depth == 0 and t.kind == "ident" and i + 1 < len(toks) and toks[i + 1].text == "(":
                fn = self._function_at(i, decl_start)
                if fn is not None:
                    yield fn
                    if fn.body_close is not None:
                        i = self.index_at(fn.body_close) + 1
                        decl_start = i
                        continue
            i += 1

    def _is_function_body(self, brace: int) -> bool:
        # A body follows ")" possibly with attributes/macros in between.
        j = brace - 1
        while j >= 0 and self.tokens[j].kind == "ident":
            j -= 1
        return j >= 0 and self.tokens[j].text == ")"

    def _function_at(self, i: int, decl_start: int) -> Function | None:
        toks = self.tokens
        open_i = i + 1
        close_i = self._match[open_i]
        # Skip macros such as __acquires(x) or __attribute__((...)) after the list.
        j = close_i + 1
        while j < len(toks) and toks[j].kind == "ident":
            if j + 1 < len(toks) and toks[j + 1].text == "(":
                j = self._match[j + 1] + 1
            else:
                j += 1
        if j >= len(toks) or toks[j].text not in ("{", ";"):
            return None
        # Need a return type before the name: "foo(x);" at file scope is a macro call.
        if i == decl_start or toks[i - 1].text in ("=", ",", "(", "return"):
            return None
        params = tuple(self._split(open_i, close_i))
        start = toks[decl_start].start
        if toks[j].text == "{":
            body_close = self._match[j]
            return Function(toks[i].text, start, toks[i].start, toks[open_i].start,
                            toks[close_i].start, params, toks[j].start, toks[body_close].start,
                            toks[body_close].end)
        return Function(toks[i].text, start, toks[i].start, toks[open_i].start,
                        toks[close_i].start, params, None, None, toks[j].end)

    def _split(self, open_i: int, close_i: int) -> Iterator[Param]:
        """Split a bracketed list at top-level commas."""
        toks = self.tokens
        if close_i == open_i + 1:
            return
        k = open_i + 1
        item_start = k
        while k <= close_i:
            t = toks[k]
            if t.text in _OPEN:
                k = self._match[k] + 1
                continue
            if t.text == "," or k == close_i:
                first, last = toks[item_start], toks[k - 1]
                yield Param(self.text[first.start:last.end], first.start, last.end)
                item_start = k + 1
            k += 1

    # -- calls and references ---------------------------------------------------
    def calls(self, name: str, within: tuple[int, int] | None = None) -> list[Call]:
        """Calls of ``name`` (its own definition and prototypes are not calls)."""
        declared = {f.name_start for f in self.functions() if f.name == name}
        out = []
        for i, t in enumerate(self.tokens):
            if t.kind != "ident" or t.text != name or t.start in declared:
                continue
            if within is not None and not within[0] <= t.start < within[1]:
                continue
            if i + 1 < len(self.tokens) and self.tokens[i + 1].text == "(":
                if i > 0 and self.tokens[i - 1].text in (".", "->"):
                    continue  # a member, not our function
                open_i = i + 1
                close_i = self._match[open_i]
                out.append(Call(name, t.start, self.tokens[open_i].start,
                                self.tokens[close_i].start, tuple(self._split(open_i, close_i))))
        return out

    def member_calls(self, member: str) -> list[Call]:
        """Calls through a member function pointer: ``x->member(...)`` / ``x.member(...)``."""
        out = []
        for i, t in enumerate(self.tokens):
            if (t.kind == "ident" and t.text == member and i > 0
                    and self.tokens[i - 1].text in (".", "->")
                    and i + 1 < len(self.tokens) and self.tokens[i + 1].text == "("):
                open_i = i + 1
                close_i = self._match[open_i]
                out.append(Call(member, t.start, self.tokens[open_i].start,
                                self.tokens[close_i].start, tuple(self._split(open_i, close_i))))
        return out

    def references(self, name: str, within: tuple[int, int] | None = None) -> list[Token]:
        """Every use of identifier ``name`` as code (not in comments or strings)."""
        out = []
        for i, t in enumerate(self.tokens):
            if t.kind == "ident" and t.text == name:
                if within is not None and not within[0] <= t.start < within[1]:
                    continue
                if i > 0 and self.tokens[i - 1].text in (".", "->"):
                    continue  # a struct member of the same name
                out.append(t)
        return out

    def is_value_use(self, tok: Token) -> bool:
        """A reference that is not a call and not a declaration of the name."""
        i = self.index_at(tok.start)
        nxt = self.tokens[i + 1].text if i + 1 < len(self.tokens) else ""
        return nxt != "("

    def next_token(self, offset: int) -> Token | None:
        i = self.index_at(offset)
        return self.tokens[i] if i < len(self.tokens) else None

    def prev_token(self, offset: int) -> Token | None:
        i = self.index_at(offset) - 1
        return self.tokens[i] if i >= 0 else None

    def statement_start(self, offset: int) -> int:
        """Offset of the first token of the statement containing ``offset``."""
        i = self.index_at(offset)
        depth = 0
        while i > 0:
            t = self.tokens[i - 1]
            if t.text in (")", "]"):
                depth += 1
            elif t.text in ("(", "["):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (t.text in (";", "{", "}")
                                 or (t.text == ":" and self._ends_label(i - 1))):
                break
            i -= 1
        return self.tokens[i].start

    def _ends_label(self, colon: int) -> bool:
        """Whether the ":" at ``colon`` ends ``case X:``, ``default:`` or ``label:``."""
        j = colon
        while j > 0 and self.tokens[j - 1].text not in (";", "{", "}", ":"):
            j -= 1
        first = self.tokens[j].text
        return first in ("case", "default") or (colon - j == 1 and self.tokens[j].kind == "ident")

    # -- preprocessor -------------------------------------------------------------
    def conditional_ranges(self) -> list[tuple[int, int, str]]:
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
        return out

    def in_conditional(self, offset: int, region: tuple[int, int] | None = None) -> bool:
        """Whether ``offset`` is inside a conditional that starts within ``region``."""
        for start, end, _ in self.conditional_ranges():
            if start <= offset < end and (region is None or region[0] <= start < region[1]):
                return True
        return False


def directive_word(text: str) -> str:
    m = re.match(r"\s*#\s*([a-z]+)", text)
    return m.group(1) if m else ""


def _match_brackets(tokens: Sequence[Token], path: str) -> dict[int, int]:
    """Match brackets; on an #if/#else imbalance, report where."""
    match: dict[int, int] = {}
    stack: list[int] = []
    for i, t in enumerate(tokens):
        if t.text in _OPEN:
            stack.append(i)
        elif t.text in _CLOSE:
            if not stack or tokens[stack[-1]].text != _CLOSE[t.text]:
                raise CSyntaxError(f"{path}: unbalanced {t.text!r} at offset {t.start}")
            j = stack.pop()
            match[i] = j
            match[j] = i
    if stack:
        raise CSyntaxError(f"{path}: unclosed {tokens[stack[-1]].text!r} at offset "
                           f"{tokens[stack[-1]].start}")
    return match


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for a, b in itertools.pairwise(ordered):
        if b.start < a.end:
            raise ValueError(f"overlapping edits at {a.start}-{a.end} and {b.start}-{b.end}")
    out = []
    pos = 0
    for e in ordered:
        out.append(text[pos:e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)
