"""argdist's probe specs: ``{p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...]
[:filter]][#label]``, parsed into an ``ArgdistSpec``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .points import Expr, ProbePoint, check_ident, check_symbol, expression
from .tokens import FLAT, WS, check_parameters, tokenize
from .tokens import fail as _fail
from .tokens import find_top as _find_top
from .tokens import skip_ws as _skip_ws
from .tokens import split as _split

__all__ = ["ARGDIST_VARIABLES", "ArgdistSpec", "Param", "parse_argdist"]

ARGDIST_VARIABLES = ("$PID", "$retval", "$latency", "$entry")


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
        label_at = spec.find("#")
        _fail(spec, n if label_at < 0 else label_at, "expected {p,r,t,u}:{[library],category}:function(signature)")
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
        check_ident(spec, library, library_at, "tracepoint category")
        check_ident(spec, function, func_at, "tracepoint event")
        point = ProbePoint("t", category=library, function=function)
    elif ptype == "u":
        if not library:
            _fail(spec, library_at, "a USDT probe needs the library or program that has it")
        check_ident(spec, function, func_at, "USDT probe name")
        point = ProbePoint("u", library=library, function=function)
    else:
        check_symbol(spec, function, func_at, "function name")
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
    expr = expression(spec, start, stop, tokens)
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
