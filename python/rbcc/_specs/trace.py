"""trace's probe specs: ``[{p,r,t,u}]:[library]:function[+offset][(signature)] [(predicate)]
["format"[, args...]]``, parsed into a ``TraceSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import SupportsIndex, SupportsInt

from .points import Expr, ProbePoint, check_ident, check_symbol, colon_parts, expression, parse_offset
from .tokens import FLAT, WS, check_parameters, tokenize
from .tokens import closing as _closing
from .tokens import fail as _fail
from .tokens import skip_ws as _skip_ws
from .tokens import split as _split
from .tokens import string_end as _string_end

__all__ = ["MAX_FORMAT_WIDTH", "TRACE_VARIABLES", "Conversion", "TraceSpec", "parse_trace"]

# trace's special names ($task etc.) as C: what bcc's trace offers in predicates and arguments
TRACE_VARIABLES = {
    "$uid": "(unsigned)(bpf_get_current_uid_gid() & 0xffffffff)",
    "$gid": "(unsigned)(bpf_get_current_uid_gid() >> 32)",
    "$pid": "(unsigned)(bpf_get_current_pid_tgid() & 0xffffffff)",
    "$tgid": "(unsigned)(bpf_get_current_pid_tgid() >> 32)",
    "$cpu": "bpf_get_smp_processor_id()",
    "$task": "((struct task_struct *)bpf_get_current_task())",
    "$retval": "PT_REGS_RC(ctx)",
}
# the widest field and the most digits a % specifier of trace's format may ask for: each event is
# formatted in Python, and '%.99999999d' would print hundreds of megabytes per event
MAX_FORMAT_WIDTH = 255


@dataclass(frozen=True)
class Conversion:
    """One ``%`` specifier of a trace format: ``conv`` is d i u x X c s p K U, ``length`` h l ll or empty."""

    text: str
    conv: str
    length: str
    position: int

    @property
    def c_type(self) -> str:
        if self.conv in "pKU":
            return "u64"
        if self.conv == "c":
            return "char"
        base = {"": "int", "h": "short", "l": "long", "ll": "long long"}[self.length]
        return base if self.conv in "di" else f"unsigned {base}"

    def render(self, value: object) -> str:
        flags = self.text[1 : -len(self.length + self.conv)]
        if self.conv in "diu":
            return f"%{flags}d" % _as_int(value)
        if self.conv in "xX":
            return f"%{flags}{self.conv}" % _as_int(value)
        if self.conv == "p":
            return f"%{flags}s" % f"0x{_as_int(value):x}"
        if self.conv == "c":
            c = value if isinstance(value, str) else bytes([_as_int(value) & 0xFF]).decode("latin-1")
            return f"%{flags}s" % c
        return f"%{flags}s" % value


def _as_int(value: object) -> int:
    """A value for %d %x %p %c: what an event field reads as (an int), or anything int() takes."""
    if isinstance(value, (str, bytes, SupportsInt, SupportsIndex)):
        return int(value)
    raise TypeError(f"a number is needed for this format specifier, not {type(value).__name__}")


_CONVERSION = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d+))?(ll|l|h)?([diuxXcspKU])")


@dataclass(frozen=True)
class TraceSpec:
    """One probe of trace: where, an optional C signature and predicate, the format and its arguments."""

    text: str
    point: ProbePoint
    signature: str | None = None
    predicate: Expr | None = None
    format: str | None = None
    conversions: tuple[Conversion, ...] = ()
    arguments: tuple[Expr, ...] = ()
    format_position: int = 0
    signature_position: int = 0

    @property
    def display(self) -> str:
        """What trace shows in its FUNC column."""
        p = self.point
        if p.kind == "u":
            return f"{p.provider}:{p.function}" if p.provider else p.function
        return p.function

    def message(self, values: list[object]) -> str:
        """The format with the values (already symbolized for %K/%U, decoded for %s) put in."""
        if self.format is None:
            return ""
        out = []
        last = 0
        for conv, value in zip(self.conversions, values, strict=True):
            start = conv.position - self.format_position
            out.append(self.format[last:start].replace("%%", "%"))
            out.append(conv.render(value))
            last = start + len(conv.text)
        out.append(self.format[last:].replace("%%", "%"))
        return "".join(out)


def _trace_point(spec: str, start: int, end: int) -> ProbePoint:
    parts = colon_parts(spec, start, end)
    # bcc's shorthands: 'func' is p::func and 'lib:func' is p:lib:func
    if len(parts) == 1:
        parts = [("p", start), ("", start), parts[0]]
    elif len(parts) == 2:
        parts = [("p", start), *parts]
    (kind, kind_at) = parts[0]
    kind = kind or "p"
    if kind not in ("p", "r", "t", "u"):
        _fail(spec, kind_at, f"unknown probe type '{kind}': must be p, r, t or u (or empty for p)")
    if kind == "t":
        if len(parts) != 3:
            _fail(spec, parts[min(len(parts) - 1, 3)][1], "a tracepoint is t:category:event")
        check_ident(spec, parts[1][0], parts[1][1], "tracepoint category")
        check_ident(spec, parts[2][0], parts[2][1], "tracepoint event")
        return ProbePoint("t", category=parts[1][0], function=parts[2][0])
    if kind == "u":
        if len(parts) > 4:
            _fail(spec, parts[4][1] - 1, "a USDT probe is u:library:probe or u:library:provider:probe")
        if not parts[1][0]:
            _fail(spec, parts[1][1], "a USDT probe needs the library or program that has it")
        provider = ""
        if len(parts) == 4:
            provider = parts[2][0]
            check_ident(spec, provider, parts[2][1], "USDT provider")
        check_ident(spec, parts[-1][0], parts[-1][1], "USDT probe name")
        return ProbePoint("u", library=parts[1][0], function=parts[-1][0], provider=provider)
    library = ":".join(text for text, _ in parts[1:-1])
    function, at = parts[-1]
    offset = 0
    if "+" in function:
        function, _, offset_text = function.partition("+")
        offset_at = at + len(function) + 1
        if kind == "r":
            _fail(spec, offset_at - 1, "a return probe takes no offset")
        offset = parse_offset(spec, offset_text, offset_at)
    check_symbol(spec, function, at, "function name")
    return ProbePoint(kind, library=library, function=function, offset=offset)


def _trace_expr(spec: str, point: ProbePoint, start: int, stop: int) -> Expr:
    """An expression of trace with its special names checked against the probe type."""
    tokens = tokenize(spec, start, stop)
    marks = [k for k, t in enumerate(tokens) if t.punct("@")]
    for k in marks:
        at, before, after = tokens[k], tokens[k - 1] if k else None, tokens[k + 1] if k + 1 < len(tokens) else None
        if (
            before is None
            or after is None
            or not (before.end == at.start == after.start - 1)
            or not re.fullmatch(r"arg\d+", before.text)
            or after.text != "user"
        ):
            _fail(spec, at.start, "@user follows an argument: arg1@user ... arg6@user")
    cut = [tokens[k + d] for k in marks for d in (0, 1)]
    kept = [t for t in tokens if t not in cut]
    expr = expression(spec, start, stop, kept, cut)
    for t in kept:
        word = t.text
        if t.kind == "var" and word not in TRACE_VARIABLES:
            names = ", ".join(TRACE_VARIABLES)
            _fail(spec, t.start, f"unknown special variable '{word}': trace knows {names}")
        if word in ("retval", "$retval") and point.kind != "r":
            _fail(spec, t.start, f"'{word}' is only known in return probes (r:...)")
        m = re.fullmatch(r"arg(\d+)", word) if t.kind == "name" else None
        if m:
            if point.kind == "t":
                _fail(spec, t.start, f"tracepoints have no '{word}': their fields are args->name")
            limit = 12 if point.kind == "u" else 6
            if len(m.group(1)) > 2 or not 1 <= int(m.group(1)) <= limit:
                _fail(spec, t.start, f"'{word}': arguments are arg1 to arg{limit}")
    return expr


def parse_trace(spec: str) -> TraceSpec:
    """One probe of trace (see the module docstring); raises ProbeSpecError on malformed input."""
    n = len(spec)
    start = _skip_ws(spec, 0)
    end = start
    while end < n and spec[end] not in WS + "(":
        end += 1
    if end == start:
        _fail(spec, start, "expected a probe: function, lib:function, t:category:event or u:lib:probe")
    point = _trace_point(spec, start, end)
    i = end
    signature = None
    signature_at = 0
    if i < n and spec[i] == "(":
        close = _closing(spec, i, n)
        if point.kind in "tu":
            _fail(spec, i, "tracepoint and USDT probes take no signature: use args->field or arg1, arg2, ...")
        check_parameters(spec, i + 1, close)
        signature_at = _skip_ws(spec, i + 1, close)
        signature = spec[signature_at:close].rstrip(WS).translate(FLAT)
        i = close + 1
    i = _skip_ws(spec, i)
    predicate = None
    if i < n and spec[i] == "(":
        close = _closing(spec, i, n)
        inner = _skip_ws(spec, i + 1, close)
        if inner == close:
            _fail(spec, i, "empty predicate")
        predicate = _trace_expr(spec, point, inner, len(spec[:close].rstrip(WS)))
        i = close + 1
    i = _skip_ws(spec, i)
    fmt = None
    fmt_at = 0
    conversions: list[Conversion] = []
    arguments: list[Expr] = []
    if i < n:
        if spec[i] != '"':
            _fail(spec, i, 'expected a "format string" (or a (predicate) before it)')
        close = _string_end(spec, i, n)
        fmt, fmt_at = spec[i + 1 : close], i + 1
        conversions = _conversions(spec, fmt, i + 1)
        i = _skip_ws(spec, close + 1)
        if i < n:
            if spec[i] != ",":
                _fail(spec, i, "expected ',' and the format's arguments after the format string")
            for text, at in _split(spec, i + 1, n, ","):
                if not text:
                    _fail(spec, at, "empty argument")
                arguments.append(_trace_expr(spec, point, at, at + len(text)))
    if len(arguments) > len(conversions):
        _fail(spec, arguments[len(conversions)].position, "more arguments than % specifiers in the format")
    if len(arguments) < len(conversions):
        conv = conversions[len(arguments)]
        _fail(spec, conv.position, f"format specifier '{conv.text}' has no argument")
    exprs = tuple(arguments)
    return TraceSpec(spec, point, signature, predicate, fmt, tuple(conversions), exprs, fmt_at, signature_at)


def _conversions(spec: str, fmt: str, position: int) -> list[Conversion]:
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            i += 1
            continue
        if fmt.startswith("%%", i):
            i += 2
            continue
        m = _CONVERSION.match(fmt, i)
        if m is None:
            kinds = "%d %i %u %x %X %c %s %p %K %U (with h, l, ll on the numbers)"
            _fail(spec, position + i, f"unknown format specifier: trace knows {kinds}")
        length, conv = m.group(3) or "", m.group(4)
        if length and conv not in "diuxX":
            _fail(spec, position + i, f"'{m.group()}': h, l and ll go with %d %i %u %x %X only")
        for group, what in ((1, "width"), (2, "precision")):
            digits = m.group(group) or "0"
            if len(digits) > 3 or int(digits) > MAX_FORMAT_WIDTH:
                where = position + m.start(group)
                _fail(spec, where, f"'{m.group()}': a {what} of {MAX_FORMAT_WIDTH} at most, as events are printed")
        out.append(Conversion(m.group(), conv, length, position + i))
        i = m.end()
    return out
