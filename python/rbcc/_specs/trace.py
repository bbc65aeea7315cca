"""Probe specifications of bcc's multi-tools (trace, argdist, funccount, stackcount): one parser for
their grammars, typed descriptions of what they ask for, and the BPF C that does it.

- trace: ``[{p,r,t,u}]:[library]:function[+offset][(signature)] [(predicate)] ["format"[, args...]]``
- argdist: ``{p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...][:filter]][#label]``
- funccount / stackcount: ``[p:|t:|u:][library:]pattern`` with ``*`` wildcards (or a regex)

A malformed spec raises :class:`~rbcc.errors.ProbeSpecError` naming the problem, with the spec quoted
and a caret under the offending position. The C generators live in :mod:`rbcc.probegen`.

Specs are untrusted input that becomes C: every predicate, argument, expression, filter and signature is
checked by :mod:`rbcc.ctokens` to be one C expression (or one parameter list) that cannot leave its place
in the program, and a format's widths and precisions are bounded (:data:`MAX_FORMAT_WIDTH`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from .ctokens import FLAT, WS, Token, check_expression, check_parameters, tokenize
from .ctokens import closing as _closing
from .ctokens import fail as _fail
from .ctokens import find_top as _find_top
from .ctokens import skip_ws as _skip_ws
from .ctokens import split as _split
from .ctokens import string_end as _string_end

__all__ = [
    "ArgdistSpec",
    "Conversion",
    "Expr",
    "Param",
    "PatternSpec",
    "ProbePoint",
    "TraceSpec",
    "parse_argdist",
    "parse_pattern",
    "parse_trace",
]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# function symbols: C identifiers plus what compilers and linkers add (foo.isra.0, memcpy@GLIBC, C++ names)
_SYMBOL = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$@]*")

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
ARGDIST_VARIABLES = ("$PID", "$retval", "$latency", "$entry")
# the widest field and the most digits a % specifier of trace's format may ask for: each event is
# formatted in Python, and '%.99999999d' would print hundreds of megabytes per event
MAX_FORMAT_WIDTH = 255


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
            return f"%{flags}d" % int(value)  # type: ignore[call-overload]
        if self.conv in "xX":
            return f"%{flags}{self.conv}" % int(value)  # type: ignore[call-overload]
        if self.conv == "p":
            return f"%{flags}s" % f"0x{int(value):x}"  # type: ignore[call-overload]
        if self.conv == "c":
            c = value if isinstance(value, str) else bytes([int(value) & 0xFF]).decode("latin-1")  # type: ignore[call-overload]
            return f"%{flags}s" % c
        return f"%{flags}s" % value


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


def _parse_offset(spec: str, text: str, position: int) -> int:
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        _fail(spec, position, f"invalid offset '{text}': must be decimal or hexadecimal (0x...)")


def _check_symbol(spec: str, name: str, position: int, what: str) -> None:
    if not name:
        _fail(spec, position, f"missing {what}")
    if not _SYMBOL.fullmatch(name):
        bad = next((i for i, c in enumerate(name) if not re.match(r"[\w.$@]", c)), 0)
        _fail(spec, position + bad, f"invalid {what} '{name}'")


def _check_ident(spec: str, name: str, position: int, what: str) -> None:
    if not name:
        _fail(spec, position, f"missing {what}")
    if not _IDENT.fullmatch(name):
        bad = next((i for i, c in enumerate(name) if not re.match(r"\w", c)), 0)
        _fail(spec, position + bad, f"invalid {what} '{name}'")


def _colon_parts(spec: str, start: int, end: int) -> list[tuple[str, int]]:
    parts = []
    begin = start
    for i in range(start, end + 1):
        if i == end or spec[i] == ":":
            parts.append((spec[begin:i], begin))
            begin = i + 1
    return parts


def _trace_point(spec: str, start: int, end: int) -> ProbePoint:
    parts = _colon_parts(spec, start, end)
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
        _check_ident(spec, parts[1][0], parts[1][1], "tracepoint category")
        _check_ident(spec, parts[2][0], parts[2][1], "tracepoint event")
        return ProbePoint("t", category=parts[1][0], function=parts[2][0])
    if kind == "u":
        if len(parts) > 4:
            _fail(spec, parts[4][1] - 1, "a USDT probe is u:library:probe or u:library:provider:probe")
        if not parts[1][0]:
            _fail(spec, parts[1][1], "a USDT probe needs the library or program that has it")
        provider = ""
        if len(parts) == 4:
            provider = parts[2][0]
            _check_ident(spec, provider, parts[2][1], "USDT provider")
        _check_ident(spec, parts[-1][0], parts[-1][1], "USDT probe name")
        return ProbePoint("u", library=parts[1][0], function=parts[-1][0], provider=provider)
    library = ":".join(text for text, _ in parts[1:-1])
    function, at = parts[-1]
    offset = 0
    if "+" in function:
        function, _, offset_text = function.partition("+")
        offset_at = at + len(function) + 1
        if kind == "r":
            _fail(spec, offset_at - 1, "a return probe takes no offset")
        offset = _parse_offset(spec, offset_text, offset_at)
    _check_symbol(spec, function, at, "function name")
    return ProbePoint(kind, library=library, function=function, offset=offset)


def _expression(spec: str, start: int, stop: int, tokens: list[Token], cut: list[Token] | None = None) -> Expr:
    """``spec[start:stop]``, checked to be one C expression (see rbcc.ctokens) once the ``cut`` tokens are
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
    expr = _expression(spec, start, stop, kept, cut)
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


@dataclass(frozen=True)
class Param:
    """A parameter of a probe's C signature."""

    type: str
    name: str


@dataclass(frozen=True)
class ArgdistSpec:
    """One argdist probe: ``kind`` is "hist" (-H) or "freq" (-C); ``exprs`` collected as ``types``."""

    text: str
    kind: str
    point: ProbePoint
    signature: str
    params: tuple[Param, ...]
    types: tuple[str, ...]
    exprs: tuple[Expr, ...]
    filter: Expr | None
    label: str | None
    default_expr: bool
    signature_position: int = 0

    @property
    def title(self) -> str:
        return self.label or self.text


def _params(spec: str, signature: str, position: int) -> tuple[Param, ...]:
    check_parameters(spec, position, position + len(signature))
    if not signature.strip() or signature.strip() == "void":
        return ()
    params = []
    for text, at in _split(spec, position, position + len(signature), ","):
        m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*(\[\d*\])?$", text)
        kind = text[: m.start()].strip() if m else ""
        if m is None or not kind or not re.search(r"[\w*]$", kind):
            _fail(spec, at + len(text), "a parameter is 'type name', e.g. int fd or const char *path")
        params.append(Param(re.sub(r"\s+", " ", kind), m.group(1)))
    return tuple(params)


def parse_argdist(spec: str, kind: str = "freq") -> ArgdistSpec:
    """One argdist probe (-C: kind "freq", -H: kind "hist"); raises ProbeSpecError on malformed input."""
    if kind not in ("freq", "hist"):
        raise ValueError(f"argdist probes are 'freq' or 'hist', not {kind!r}")
    n = len(spec)
    # the probe type and the library (a path, which may hold '//' or quotes) end at the first two ':';
    # the rest is C, where the separators are found outside brackets and literals
    first = spec.find(":")
    second = spec.find(":", first + 1) if first >= 0 else -1
    if second < 0:
        hash_at = spec.find("#")
        _fail(spec, n if hash_at < 0 else hash_at, "expected {p,r,t,u}:{[library],category}:function(signature)")
    label = None
    end = n
    hash_at = _find_top(spec, second + 1, n, "#")
    if hash_at is not None:
        end = hash_at
        label = spec[end + 1 :].strip()
        if not label:
            _fail(spec, end, "empty #label")
    parts = []
    for a, b in ((0, first), (first + 1, second)):
        at = _skip_ws(spec, a, b)
        parts.append((spec[at:b].rstrip(WS), at))
    parts += _split(spec, second + 1, end, ":")
    if len(parts) > 6:
        _fail(spec, parts[6][1] - 1, "too many ':'-separated parts")
    (ptype, ptype_at), (library, library_at), (func_text, func_at) = parts[:3]
    if ptype not in ("p", "r", "t", "u"):
        _fail(spec, ptype_at, f"unknown probe type '{ptype}': must be p, r, t or u")
    m = re.fullmatch(r"([^\s(]*)\s*\((.*)\)", func_text, re.S)
    if m is None:
        paren = func_text.find("(")
        where = func_at + (paren if paren >= 0 else len(func_text))
        _fail(spec, where, "the function needs its signature in parentheses: func() or func(int fd, ...)")
    function, signature = m.group(1), m.group(2).strip(WS)
    sig_at = func_at + m.start(2) + (len(m.group(2)) - len(m.group(2).lstrip(WS)))
    if ptype == "t":
        _check_ident(spec, library, library_at, "tracepoint category")
        _check_ident(spec, function, func_at, "tracepoint event")
        point = ProbePoint("t", category=library, function=function)
    elif ptype == "u":
        if not library:
            _fail(spec, library_at, "a USDT probe needs the library or program that has it")
        _check_ident(spec, function, func_at, "USDT probe name")
        point = ProbePoint("u", library=library, function=function)
    else:
        _check_symbol(spec, function, func_at, "function name")
        point = ProbePoint(ptype, library=library, function=function)
    if signature and ptype in "tu":
        _fail(spec, sig_at, "tracepoint and USDT probes take no signature: use args->field or arg1, ...")
    params = _params(spec, signature, sig_at)
    if len(parts) == 4:
        _fail(spec, parts[3][1] + len(parts[3][0]), "a type needs its expression: ...:type:expr")
    if len(parts) >= 5:
        types_text, types_at = parts[3]
        types = []
        for t, at in _split(spec, types_at, types_at + len(types_text), ","):
            if not re.fullmatch(r"[A-Za-z_][\w\s]*\**\s*\**", t):
                _fail(spec, at, f"invalid type '{t}'" if t else "missing type")
            types.append(re.sub(r"\s+", " ", t))
        exprs_text, exprs_at = parts[4]
        exprs = []
        for t, at in _split(spec, exprs_at, exprs_at + len(exprs_text), ","):
            if not t:
                _fail(spec, at, "missing expression")
            exprs.append(_argdist_expr(spec, point, params, at, at + len(t)))
        if len(exprs) != len(types):
            _fail(spec, exprs_at, f"{len(types)} type(s) but {len(exprs)} expression(s)")
        if kind == "hist" and len(exprs) > 1:
            _fail(spec, exprs_at, "a histogram (-H) collects one expression")
        default = False
    else:
        if kind == "hist" and ptype != "r":
            _fail(spec, end, "a histogram (-H) needs :type:expr (only return probes default to $retval)")
        types = ["int" if ptype == "r" else "u64"]
        exprs = [Expr("$retval" if ptype == "r" else "1", end)]
        default = True
    filt = None
    if len(parts) == 6:
        text, at = parts[5]
        if not text:
            _fail(spec, at, "empty filter")
        filt = _argdist_expr(spec, point, params, at, at + len(text))
    return ArgdistSpec(
        spec, kind, point, signature.translate(FLAT), params, tuple(types), tuple(exprs), filt, label, default, sig_at
    )


def _argdist_expr(spec: str, point: ProbePoint, params: tuple[Param, ...], start: int, stop: int) -> Expr:
    tokens = tokenize(spec, start, stop)
    expr = _expression(spec, start, stop, tokens)
    for k, t in enumerate(tokens):
        word = t.text
        if t.kind == "name":
            if point.kind == "t" and re.fullmatch(r"arg\d+", word):
                _fail(spec, t.start, f"tracepoints have no '{word}': their fields are args->name")
            continue
        if t.kind != "var":
            continue
        if word not in ARGDIST_VARIABLES:
            _fail(spec, t.start, f"unknown special variable '{word}': argdist knows {', '.join(ARGDIST_VARIABLES)}")
        if word != "$PID" and point.kind != "r":
            _fail(spec, t.start, f"'{word}' is only known in return probes (r:...)")
        if word == "$entry":
            shape = [x.text if x.kind == "punct" else x.kind for x in tokens[k + 1 : k + 4]]
            if shape != ["(", "name", ")"]:
                _fail(spec, t.start, "$entry takes a parameter name: $entry(name)")
            name = tokens[k + 2]
            if name.text not in {p.name for p in params}:
                _fail(spec, name.start, f"$entry({name.text}): the signature has no such parameter")
    return expr


@dataclass(frozen=True)
class PatternSpec:
    """A funccount/stackcount pattern: ``kind`` p (functions), t (tracepoints) or u (USDT probes);
    ``pattern`` as written and ``regex`` what names must match (a tracepoint's name is category:event)."""

    text: str
    kind: str
    library: str
    pattern: str
    regex: str

    @property
    def is_kernel(self) -> bool:
        return self.kind == "t" or (self.kind == "p" and not self.library)

    def matches(self, name: str) -> bool:
        return re.match(self.regex, name) is not None


def parse_pattern(spec: str, use_regex: bool = False) -> PatternSpec:
    """A funccount/stackcount pattern; ``use_regex`` (-r) takes the name part as a regular expression,
    else ``*`` is the only wildcard."""
    parts = _colon_parts(spec, 0, len(spec))
    if len(parts) > 3:
        _fail(spec, parts[3][1] - 1, "too many ':'-separated parts: [p:|t:|u:][library:]pattern")
    if len(parts) == 1:
        parts = [("p", 0), ("", 0), parts[0]]
    elif len(parts) == 2:
        parts = [("p", 0), *parts]
    (kind, kind_at), (library, library_at), (pattern, pattern_at) = parts
    if kind not in ("p", "t", "u"):
        _fail(spec, kind_at, f"unknown probe type '{kind}': must be p, t or u")
    if kind == "t":
        if not library:
            _fail(spec, library_at, "a tracepoint pattern is t:category:event (wildcards allowed)")
        library_pattern, library = library, ""
        name, name_at = f"{library_pattern}:{pattern}", library_at
    else:
        name, name_at = pattern, pattern_at
        if kind == "u" and not library:
            _fail(spec, library_at, "a USDT pattern needs the library or program: u:library:probe")
    if not pattern:
        _fail(spec, pattern_at, "missing pattern")
    if any(c in WS for c in name):
        _fail(spec, name_at + next(i for i, c in enumerate(name) if c in WS), "blank in the pattern")
    if use_regex:
        regex = name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "possible nested set" and the like are no errors
                re.compile(regex)
        except (re.error, RecursionError, OverflowError) as e:
            if not isinstance(e, re.error):
                _fail(spec, name_at, "regular expression too complex")
            _fail(spec, name_at + (e.pos or 0), f"invalid regular expression: {e.msg}")
    else:
        regex = "^" + ".*".join(re.escape(piece) for piece in name.split("*")) + "$"
    return PatternSpec(spec, kind, library, name, regex)
