"""C as it appears in probe specs: where a spec's parts end, the C tokens of an expression, and the checks
that an expression (or a parameter list) is exactly one and no more.

A spec is untrusted text that :mod:`rbcc._specs.gen` pastes into a C program, so a predicate, an argument
or a signature must not be able to end its slot and add code of its own. The tokenizer reads what clang
reads: comments, string and character literals with their escapes, digraphs, trigraphs, line splices.
What could move an expression's end away from where the spec's grammar put it is refused, with a caret:

- comments (they can hide brackets, quotes and separators from one reader and not the other),
- ``;``, ``{`` and ``}`` (statements and blocks), ``#`` and ``_Pragma`` (preprocessor directives),
- digraphs and trigraphs (other spellings of brackets, braces and ``#``), backslashes outside literals
  (line splices), newlines inside literals, literal prefixes other than C's (``R"(...)"`` raw strings),
- brackets that do not pair up, and token sequences that are not one expression (``a == == 1``).

Newlines between tokens are blanks: the spec's grammar treats them so, and the text an expression
carries into the C has them turned into spaces, so a spec can never start a line of the program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from ..errors import ProbeSpecError

WS = " \t\n\r\v\f"
FLAT = str.maketrans("\n\r\v\f", "    ")  # newlines to blanks, offsets kept
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")": "(", "]": "[", "}": "{"}
_COMMENT = "comments are not allowed in probe specs (they can hide where an expression ends)"


def fail(spec: str, position: int, message: str) -> NoReturn:
    raise ProbeSpecError(message, spec, max(0, min(position, len(spec))))


def skip_ws(spec: str, i: int, end: int | None = None) -> int:
    end = len(spec) if end is None else end
    while i < end and spec[i] in WS:
        i += 1
    return i


# -- where a spec's parts end: brackets and literals skipped --------------------------------------------
# These find the grammar's separators (the predicate's ')', the ',' between arguments, argdist's ':' and
# '#'); the tokenizer then checks each part on its own. A comment is refused here already, as it could
# hide a separator from this scan that clang would see, or show one that clang would not.


def string_end(spec: str, start: int, end: int) -> int:
    """The index of the quote closing the C string or char literal opened at ``start``."""
    quote = spec[start]
    i = start + 1
    while i < end:
        if spec[i] == "\\":
            i += 2
            continue
        if spec[i] == quote:
            return i
        i += 1
    what = "format string" if quote == '"' else "character literal"
    fail(spec, start, f"unterminated {what}: no closing {quote}")


def closing(spec: str, start: int, end: int) -> int:
    """The index of the bracket closing the one at ``start``, over nested brackets and C literals."""
    stack = [start]
    i = start + 1
    while i < end:
        c = spec[i]
        if spec.startswith(("/*", "//"), i, end):
            fail(spec, i, _COMMENT)
        if c in "\"'":
            i = string_end(spec, i, end)
        elif c in _OPEN:
            stack.append(i)
        elif c in _CLOSE:
            opened = stack.pop()
            if spec[opened] != _CLOSE[c]:
                fail(spec, i, f"'{c}' does not close the '{spec[opened]}' before it")
            if not stack:
                return i
        i += 1
    fail(spec, stack[-1], f"unmatched '{spec[stack[-1]]}'")


def split(spec: str, start: int, end: int, sep: str) -> list[tuple[str, int]]:
    """``spec[start:end]`` split at the ``sep`` characters outside brackets and literals: (text, where the
    text starts, its surrounding blanks skipped)."""
    parts = []
    i = piece = start
    while i < end:
        c = spec[i]
        if spec.startswith(("/*", "//"), i, end):
            fail(spec, i, _COMMENT)
        if c in "\"'":
            i = string_end(spec, i, end)
        elif c in _OPEN:
            i = closing(spec, i, end)
        elif c in _CLOSE:
            fail(spec, i, f"unmatched '{c}'")
        elif c == sep:
            parts.append(piece)
            piece = i + 1
        i += 1
    parts.append(piece)
    bounds = [*parts[1:], end + 1]
    out = []
    for begin, stop in zip(parts, bounds, strict=True):
        first = skip_ws(spec, begin, stop - 1)
        out.append((spec[first : stop - 1].rstrip(WS), first))
    return out


def find_top(spec: str, start: int, end: int, char: str) -> int | None:
    """The first ``char`` in ``spec[start:end]`` outside brackets and literals."""
    i = start
    while i < end:
        c = spec[i]
        if c == char:
            return i
        if spec.startswith(("/*", "//"), i, end):
            fail(spec, i, _COMMENT)
        if c in "\"'":
            i = string_end(spec, i, end)
        elif c in _OPEN:
            i = closing(spec, i, end)
        i += 1
    return None


# -- tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A C token of a spec: ``kind`` is name, var (trace's and argdist's ``$name``), number, string,
    char or punct; ``start`` is its offset in the spec."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def punct(self, *texts: str) -> bool:
        return self.kind == "punct" and self.text in texts


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a preprocessing number, as clang reads one: '1e+5' and '0x1p-3' are one token each
_NUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*")
_TRIGRAPH = re.compile(r"\?\?[=/'()!<>\-]")
_LITERAL_PREFIXES = ("L", "u", "U", "u8")
_DIGRAPHS = {"%:%:": "##", "<:": "[", ":>": "]", "<%": "{", "%>": "}", "%:": "#"}
_PUNCTUATORS = sorted(
    [
        *"... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ##".split(),
        *"[ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #".split(),
        *_DIGRAPHS,
    ],
    key=len,
    reverse=True,
)


def _literal_end(spec: str, quote_at: int, end: int) -> int:
    """The index after the literal whose quote is at ``quote_at``; a literal ends on its line, as in C."""
    quote = spec[quote_at]
    i = quote_at + 1
    while i < end:
        c = spec[i]
        if c == quote:
            return i + 1
        if c in "\n\r":
            break
        if c != "\t" and not c.isprintable():
            fail(spec, i, f"unprintable character {c!r} in a literal: write it as an escape")
        if c == "\\":
            # what follows a backslash is escaped, but a backslash-newline is a line splice
            if i + 1 < end and (spec[i + 1] in "\n\r" or not spec[i + 1].isprintable()):
                fail(spec, i, "a backslash before a line break or unprintable character in a literal")
            i += 1
        i += 1
    what = "string" if quote == '"' else "character"
    fail(spec, quote_at, f"unterminated {what} literal: no closing {quote} on its line")


def tokenize(spec: str, start: int, end: int) -> list[Token]:
    """The C tokens of ``spec[start:end]``; raises ProbeSpecError on what C would read otherwise than a
    plain reading of the spec suggests (see the module docstring). ``@`` comes as a punct token: trace's
    ``arg1@user`` is for the caller to take out."""
    m = _TRIGRAPH.search(spec, start, end)
    if m:
        fail(spec, m.start(), f"'{m.group()}' is a trigraph, which C may read as another character: write '?\\?'")
    tokens = []
    i = start
    while i < end:
        c = spec[i]
        if c in WS:
            i += 1
            continue
        if spec.startswith(("/*", "//"), i, end):
            fail(spec, i, _COMMENT)
        kind = ""
        j = i
        if c == "$" or _NAME.match(spec, i, end):
            m = _NAME.match(spec, i + 1 if c == "$" else i, end)
            if m is None:
                fail(spec, i, "'$' starts a special variable, such as $retval")
            kind, j = ("var" if c == "$" else "name"), m.end()
            if kind == "name" and m.group() in _LITERAL_PREFIXES and j < end and spec[j] in "\"'":
                kind, j = ("string" if spec[j] == '"' else "char"), _literal_end(spec, j, end)
        elif number := _NUMBER.match(spec, i, end):
            kind, j = "number", number.end()
        elif c in "\"'":
            kind, j = ("string" if c == '"' else "char"), _literal_end(spec, i, end)
        if kind:
            # a name, number or literal glued to a quote or '$' is read differently by different
            # compilers (raw strings R"(...)", digit separators 1'000, '$' in names): make it explicit
            if kind in ("name", "var", "number") and j < end and spec[j] in "\"'$":
                fail(spec, j, f"'{spec[j]}' right after '{spec[i:j]}': put a blank between them")
            tokens.append(Token(kind, spec[i:j], i))
            i = j
            continue
        p = next((p for p in _PUNCTUATORS if spec.startswith(p, i, end)), None)
        if p in _DIGRAPHS:
            fail(spec, i, f"'{p}' is a digraph, C's other spelling of '{_DIGRAPHS[p]}': not allowed in probe specs")
        if p in ("#", "##"):
            fail(spec, i, "'#' is no part of a C expression: no preprocessor directives in probe specs")
        if p is None and c == "@":
            p = "@"
        if p is None:
            if c == "\\":
                fail(spec, i, "a backslash outside a string or character literal")
            fail(spec, i, f"unexpected character {c!r}")
        tokens.append(Token("punct", p, i))
        i += len(p)
    return tokens


# -- one expression -------------------------------------------------------------------------------------

_UNARY = {"!", "~", "-", "+", "*", "&", "++", "--"}
_BINARY = set("* / % + - << >> < > <= >= == != & ^ | && || = *= /= %= += -= <<= >>= &= ^= |= ,".split())
# names that are prefix operators: an operand still follows them
_PREFIX_WORDS = {"sizeof", "_Alignof", "__alignof__", "__alignof", "alignof", "__extension__", "__real__", "__imag__"}
_ATOMS = ("name", "var", "number", "string", "char")
_MAX_DEPTH = 64


def _pairs(spec: str, tokens: list[Token]) -> dict[int, int]:
    """Index of each '(' and '[' -> index of the token closing it; raises on brackets that do not pair."""
    pairs = {}
    stack: list[int] = []
    for k, t in enumerate(tokens):
        if t.punct("(", "["):
            stack.append(k)
            if len(stack) > _MAX_DEPTH:
                fail(spec, t.start, f"brackets nested deeper than {_MAX_DEPTH}")
        elif t.punct(")", "]"):
            if not stack:
                fail(spec, t.start, f"unmatched '{t.text}'")
            opened = stack.pop()
            if tokens[opened].text != _CLOSE[t.text]:
                fail(spec, t.start, f"'{t.text}' does not close the '{tokens[opened].text}' before it")
            pairs[opened] = k
    if stack:
        fail(spec, tokens[stack[-1]].start, f"unmatched '{tokens[stack[-1]].text}'")
    return pairs


def check_expression(spec: str, tokens: list[Token], end: int) -> None:
    """``tokens``, of a spec's expression ending at ``end``, are one C expression: nothing in them can end
    the slot the C puts them in, and they read as operands joined by operators (casts, calls, subscripts,
    members, ternaries included). A call's arguments are left to clang, as macros take any tokens."""
    if not tokens:
        fail(spec, end, "empty expression")
    for t in tokens:
        if t.punct(";"):
            fail(spec, t.start, "';' would end the statement: a probe expression is one C expression")
        if t.punct("{", "}"):
            fail(spec, t.start, f"'{t.text}' has no place in a probe expression (no blocks or compound literals)")
        if t.punct("@"):
            fail(spec, t.start, "'@' is not C (trace's arg1@user ... arg6@user is the one use of it)")
        if t.kind == "name" and t.text in ("_Pragma", "__pragma"):
            fail(spec, t.start, f"{t.text} is a preprocessor directive: not allowed in probe specs")
    _shape(spec, tokens, 0, len(tokens), _pairs(spec, tokens), end)


def _shape(spec: str, toks: list[Token], lo: int, hi: int, pairs: dict[int, int], end: int) -> None:
    expect = True  # an operand comes next
    cast = False  # the last operand was a parenthesized group: another operand may follow (a cast)
    questions: list[Token] = []  # '?' waiting for their ':'
    prev: Token | None = None
    i = lo
    while i < hi:
        t = toks[i]
        if cast and not expect and (t.kind in _ATOMS or t.punct("!", "~")):
            expect = True
        was_cast, cast = cast, False
        if expect:
            if t.kind in _ATOMS:
                expect = t.kind == "name" and t.text in _PREFIX_WORDS
            elif t.punct("("):
                close = pairs[i]
                _group(spec, toks, i + 1, close, pairs, toks[close].start)
                i, expect, cast = close, False, True
            elif t.punct(":") and prev is not None and prev.punct("?"):
                questions.pop()  # GNU's 'a ?: b'
            elif not t.punct(*_UNARY):
                after = f" after '{prev.text}'" if prev else ""
                fail(spec, t.start, f"expected a value{after}, not '{t.text}'")
        elif t.punct("++", "--"):
            cast = was_cast  # postfix; '(int)++x' is still a cast
        elif t.punct(".", "->"):
            field = toks[i + 1] if i + 1 < hi else None
            if field is None or field.kind != "name":
                fail(spec, field.start if field else end, f"expected a field name after '{t.text}'")
            i += 1
        elif t.punct("["):
            close = pairs[i]
            _shape(spec, toks, i + 1, close, pairs, toks[close].start)
            i = close
        elif t.punct("("):
            i = pairs[i]  # a call
        elif t.punct("?"):
            questions.append(t)
            expect = True
        elif t.punct(":"):
            if not questions:
                fail(spec, t.start, "':' without a '?' before it")
            questions.pop()
            expect = True
        elif t.punct(*_BINARY):
            expect = True
        elif not (t.kind == "string" and prev is not None and prev.kind == "string"):  # "a" "b" is one
            fail(spec, t.start, f"missing an operator between '{prev.text if prev else ''}' and '{t.text}'")
        prev = toks[i]
        i += 1
    if expect:
        fail(spec, end, f"the expression ends after '{prev.text}': a value is missing" if prev else "empty expression")
    if questions:
        fail(spec, questions[-1].start, "'?' without its ':'")


def _group(spec: str, toks: list[Token], lo: int, hi: int, pairs: dict[int, int], end: int) -> None:
    """A parenthesized group where an operand goes: an expression, or a type (a cast, sizeof's operand)."""
    if lo == hi:
        fail(spec, end, "empty parentheses")
    try:
        _shape(spec, toks, lo, hi, pairs, end)
    except ProbeSpecError:
        if not _typeish(toks, lo, hi, pairs):
            raise


def _typeish(toks: list[Token], lo: int, hi: int, pairs: dict[int, int]) -> bool:
    """Whether the tokens can be a type name: 'struct task_struct *', 'unsigned long', 'void (*)(int)'."""
    if toks[lo].kind != "name":
        return False
    i = lo
    while i < hi:
        t = toks[i]
        if t.kind == "name" or t.punct("*"):
            i += 1
        elif t.punct("(", "["):
            i = pairs[i] + 1
        else:
            return False
    return True


def check_parameters(spec: str, start: int, end: int) -> None:
    """``spec[start:end]`` is a C parameter list: names, '*', ',', brackets, array sizes and '...' only."""
    tokens = tokenize(spec, start, end)
    for t in tokens:
        if t.kind not in ("name", "number") and not t.punct("*", ",", "(", ")", "[", "]", "..."):
            fail(spec, t.start, f"'{t.text}' has no place in a signature: it lists parameters, 'type name, ...'")
    _pairs(spec, tokens)
