"""What the probe-spec grammars share: where a probe goes (``ProbePoint``), a C expression of a spec
(``Expr``), and the checks of names, offsets and expressions that point a caret at what is wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tokens import FLAT, Token, check_expression
from .tokens import fail as _fail

__all__ = ["Expr", "ProbePoint", "check_ident", "check_symbol", "colon_parts", "expression", "parse_offset"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# function symbols: C identifiers plus what compilers and linkers add (foo.isra.0, memcpy@GLIBC, C++ names)
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$@]*")


@dataclass(frozen=True)
class ProbePoint:
    """Where a probe goes: ``kind`` p (entry), r (return), t (tracepoint) or u (USDT); ``library`` is empty
    for the kernel; ``function`` is the function, the tracepoint's event or the USDT probe's name."""

    kind: str
    library: str = ""
    function: str = ""
    category: str = ""
    provider: str = ""
    offset: int = 0

    @property
    def is_kernel(self) -> bool:
        return self.kind in "pr" and not self.library

    @property
    def is_user(self) -> bool:
        return self.kind == "u" or (self.kind in "pr" and bool(self.library))

    @property
    def tracepoint(self) -> str:
        return f"{self.category}:{self.function}"


@dataclass(frozen=True)
class Expr:
    """A C expression of a spec as written (``@user`` marks removed, line breaks as blanks), where it starts
    in the spec, whether it was marked ``@user`` (a kernel probe's argument that points to user memory),
    and how many characters of the spec it takes (0 for an expression the spec implies)."""

    text: str
    position: int
    user: bool = False
    length: int = 0

    def written(self, spec: str) -> str:
        """The expression as the spec has it."""
        return spec[self.position : self.position + self.length]


def parse_offset(spec: str, text: str, position: int) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        _fail(spec, position, f"invalid offset '{text}': must be decimal or hexadecimal (0x...)")


def check_symbol(spec: str, name: str, position: int, what: str) -> None:
    if not name:
        _fail(spec, position, f"missing {what}")
    if not _SYMBOL.fullmatch(name):
        bad = next((i for i, c in enumerate(name) if not re.match(r"[\w.$@]", c)), 0)
        _fail(spec, position + bad, f"invalid {what} '{name}'")


def check_ident(spec: str, name: str, position: int, what: str) -> None:
    if not name:
        _fail(spec, position, f"missing {what}")
    if not _IDENT.fullmatch(name):
        bad = next((i for i, c in enumerate(name) if not re.match(r"\w", c)), 0)
        _fail(spec, position + bad, f"invalid {what} '{name}'")


def colon_parts(spec: str, start: int, end: int) -> list[tuple[str, int]]:
    parts = []
    begin = start
    for i in range(start, end + 1):
        if i == end or spec[i] == ":":
            parts.append((spec[begin:i], begin))
            begin = i + 1
    return parts


def expression(spec: str, start: int, stop: int, tokens: list[Token], cut: list[Token] | None = None) -> Expr:
    """``spec[start:stop]``, checked to be one C expression (see rbcc._specs.tokens) once the ``cut`` tokens are
    left out (trace's @user marks), as an Expr whose text has them left out and line breaks as blanks."""
    check_expression(spec, tokens, stop)
    _check_strcmp(spec, tokens)
    text = spec[start:stop]
    for t in reversed(cut or []):
        text = text[: t.start - start] + text[t.end - start :]
    return Expr(text.translate(FLAT), start, bool(cut), stop - start)


def _check_strcmp(spec: str, tokens: list[Token]) -> None:
    """STRCMP("text", expr) is rewritten by pattern (rbcc.utils.StrcmpRewrite), which reads the literal up to
    its first quote: anything else in that place would be read differently from what it is."""
    for k, t in enumerate(tokens):
        if t.kind != "name" or t.text != "STRCMP":
            continue
        shape = [x.text if x.kind == "punct" else x.kind for x in tokens[k + 1 : k + 4]]
        if shape != ["(", "string", ","]:
            _fail(spec, t.start, 'STRCMP takes a string literal and a pointer: STRCMP("text", arg1)')
        if not re.fullmatch(r'"[^"]+"', tokens[k + 2].text):
            _fail(spec, tokens[k + 2].start, "STRCMP's string must not be empty, have a prefix or hold a '\"'")
