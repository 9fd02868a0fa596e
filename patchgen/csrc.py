"""Queries on kernel C: functions, parameters, calls, references, statements.

Why not a full parser: kernel sources are full of macros (``__net_init``,
``EXPORT_SYMBOL_GPL(...)``, ``list_for_each_entry(...) {``) and ``#ifdef``
branches that a C grammar without the preprocessor mis-reads (tree-sitter
leaves ERROR nodes in nearly every netfilter file).  Every rewrite the
series needs is expressible on tokens with balanced brackets: find function
definitions and prototypes, their parameters and bodies, calls and their
arguments, other references to a name, and whether a position sits inside
a preprocessor conditional.

The tokens, bracket pairs and other ranges come from the immutable
``patchgen.ctokens.TokenIndex``; the functions here only read it, and
``CFile`` is that index with the queries as methods (the function list is
cached on it).  Edits are byte ranges with replacement text, applied
together; overlapping edits are an error, never silently merged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from patchgen.ctokens import CSyntaxError, Token, TokenIndex, directive_word, tokenize

__all__ = [
    "CFile",
    "CSyntaxError",
    "Call",
    "Edit",
    "Function",
    "Param",
    "Token",
    "apply_edits",
    "directive_word",
    "normalise_type",
    "tokenize",
]

# Words that complete a type: a parameter ending in one has no name.
_TYPE_WORDS = frozenset({"struct", "union", "enum", "const", "volatile", "unsigned", "signed",
                         "int", "char", "long", "short", "void", "bool", "u8", "u16", "u32",
                         "u64"})
_QUALIFIERS = frozenset({"const", "volatile", "restrict", "__restrict", "register"})


@dataclass(frozen=True)
class Param:
    """A parameter or an argument: its source text, range and code tokens."""

    text: str
    start: int
    end: int
    tokens: tuple[Token, ...] = ()

    @property
    def name(self) -> str | None:
        """The declared name, or None for a bare type (``bool``, ``struct net *``)."""
        i = self._name_index()
        return None if i is None else self.tokens[i].text

    def _name_index(self) -> int | None:
        toks = self.tokens
        for k in range(len(toks) - 2):  # a function pointer: int (*name)(int)
            if toks[k].text == "(" and toks[k + 1].text == "*":
                return k + 2 if toks[k + 2].kind == "ident" else None
        last = next((k for k, t in enumerate(toks) if t.text == "["), len(toks)) - 1
        if last < 0 or toks[last].kind != "ident" or toks[last].text in _TYPE_WORDS:
            return None
        if last > 0 and toks[last - 1].text in ("struct", "union", "enum"):
            return None
        # A name needs a type before it: "bool" alone, or "const bool", is a type.
        if not any(t.text not in _QUALIFIERS for t in toks[:last]):
            return None
        return last

    @property
    def type(self) -> str:
        """The type with the name removed and whitespace normalised."""
        i = self._name_index()
        return normalise_type(" ".join(t.text for k, t in enumerate(self.tokens) if k != i))


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


# -- functions -------------------------------------------------------------------------
def scan_functions(ix: TokenIndex) -> Iterator[Function]:
    """Every function definition and prototype at file scope, in order."""
    toks = ix.tokens
    decl_start = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.text == "{":
            # struct/union/enum/initializer, or the body of a function-like
            # macro's definition: skip it whole.
            body = is_function_body(ix, i)
            i = ix.matching(i) + 1
            if body:
                decl_start = i
            continue
        if t.text == ";":
            decl_start = i + 1
        elif t.kind == "ident" and i + 1 < len(toks) and toks[i + 1].text == "(":
            fn = function_at(ix, i, decl_start)
            if fn is not None:
                yield fn
                if fn.body_close is not None:
                    i = decl_start = ix.index_at(fn.body_close) + 1
                    continue
        i += 1


def is_function_body(ix: TokenIndex, brace: int) -> bool:
    # A body follows ")" possibly with attributes/macros in between.
    j = brace - 1
    while j >= 0 and ix.tokens[j].kind == "ident":
        j -= 1
    return j >= 0 and ix.tokens[j].text == ")"


def function_at(ix: TokenIndex, i: int, decl_start: int) -> Function | None:
    toks = ix.tokens
    open_i = i + 1
    close_i = ix.matching(open_i)
    # Skip macros such as __acquires(x) or __attribute__((...)) after the list.
    j = close_i + 1
    while j < len(toks) and toks[j].kind == "ident":
        if j + 1 < len(toks) and toks[j + 1].text == "(":
            j = ix.matching(j + 1) + 1
        else:
            j += 1
    if j >= len(toks) or toks[j].text not in ("{", ";"):
        return None
    # Need a return type before the name: "foo(x);" at file scope is a macro call.
    if i == decl_start or toks[i - 1].text in ("=", ",", "(", "return"):
        return None
    params = tuple(split_list(ix, open_i, close_i))
    start = toks[decl_start].start
    head = (toks[i].text, start, toks[i].start, toks[open_i].start, toks[close_i].start, params)
    if toks[j].text == "{":
        body_close = ix.matching(j)
        return Function(*head, toks[j].start, toks[body_close].start, toks[body_close].end)
    return Function(*head, None, None, toks[j].end)


def split_list(ix: TokenIndex, open_i: int, close_i: int) -> Iterator[Param]:
    """Split a bracketed list at top-level commas."""
    toks = ix.tokens
    k = item_start = open_i + 1
    while k <= close_i and close_i > open_i + 1:
        t = toks[k]
        if t.text in ("(", "[", "{"):
            k = ix.matching(k) + 1
            continue
        if t.text == "," or k == close_i:
            first, last = toks[item_start], toks[k - 1]
            yield Param(ix.text[first.start:last.end], first.start, last.end,
                        toks[item_start:k])
            item_start = k + 1
        k += 1


# -- calls and references ------------------------------------------------------------
def call_at(ix: TokenIndex, i: int) -> Call:
    """The call whose name is token ``i`` (followed by "(")."""
    close_i = ix.matching(i + 1)
    return Call(ix.tokens[i].text, ix.tokens[i].start, ix.tokens[i + 1].start,
                ix.tokens[close_i].start, tuple(split_list(ix, i + 1, close_i)))


def is_member(ix: TokenIndex, i: int) -> bool:
    """Token ``i`` names a struct member: ``x.name`` or ``x->name``."""
    return i > 0 and ix.tokens[i - 1].text in (".", "->")


def followed_by_paren(ix: TokenIndex, i: int) -> bool:
    return i + 1 < len(ix.tokens) and ix.tokens[i + 1].text == "("


def _within(tok: Token, within: tuple[int, int] | None) -> bool:
    return within is None or within[0] <= tok.start < within[1]


def enclosing_open(ix: TokenIndex, i: int) -> int | None:
    """Index of the innermost bracket open around token ``i``."""
    p = ix.parent[i]
    return None if p < 0 else p


class CFile(TokenIndex):
    """A C source file: the token index with the queries as methods."""

    @classmethod
    def parse(cls, path: str, text: str) -> CFile:
        ix = cls.build(path, text)
        assert isinstance(ix, CFile)
        return ix

    @cached_property
    def _functions(self) -> tuple[Function, ...]:
        return tuple(scan_functions(self))

    def functions(self) -> list[Function]:
        """Every function definition and prototype at file scope."""
        return list(self._functions)

    def enclosing(self, offset: int) -> Function | None:
        """The function definition whose body contains ``offset``."""
        for fn in self._functions:
            if fn.body_open is not None and fn.body_close is not None and \
                    fn.body_open < offset < fn.body_close:
                return fn
        return None

    def function(self, name: str, *, definition: bool = True) -> Function | None:
        return next((fn for fn in self._functions
                     if fn.name == name and fn.is_definition == definition), None)

    def calls(self, name: str, within: tuple[int, int] | None = None) -> list[Call]:
        """Calls of ``name`` (its own definition and prototypes are not calls)."""
        declared = {f.name_start for f in self._functions if f.name == name}
        return [call_at(self, i) for i, t in enumerate(self.tokens)
                if t.kind == "ident" and t.text == name and t.start not in declared
                and _within(t, within) and followed_by_paren(self, i)
                and not is_member(self, i)]

    def member_calls(self, member: str) -> list[Call]:
        """Calls through a member function pointer: ``x->member(...)`` / ``x.member(...)``."""
        return [call_at(self, i) for i, t in enumerate(self.tokens)
                if t.kind == "ident" and t.text == member and is_member(self, i)
                and followed_by_paren(self, i)]

    def references(self, name: str, within: tuple[int, int] | None = None) -> list[Token]:
        """Every use of identifier ``name`` as code (not in comments or strings)."""
        return [t for i, t in enumerate(self.tokens)
                if t.kind == "ident" and t.text == name and _within(t, within)
                and not is_member(self, i)]

    def is_value_use(self, tok: Token) -> bool:
        """A reference that is not a call and not a declaration of the name."""
        return not followed_by_paren(self, self.index_at(tok.start))

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

    def define(self, name: str) -> Token | None:
        """The ``#define name`` directive, if the file has one."""
        head = re.compile(rf"\s*#\s*define\s+{re.escape(name)}\b")
        return next((d for d in self.directives if head.match(self.code[d.start:d.end])), None)

    def conditional_ranges(self) -> list[tuple[int, int, str]]:
        """(start, end, condition) of every #if/#ifdef/#ifndef ... #endif region."""
        return list(self.conditionals)


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
