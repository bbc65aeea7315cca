"""Probe specs are untrusted text that becomes C: whatever a trace predicate or argument, or an argdist
expression or filter holds (comments, literals with quotes and parentheses, newlines, ';', braces, '#',
digraphs, trigraphs, line splices), the parser refuses it, or the C has exactly one expression where the
spec's grammar put it and the rest of the program is token for token what it would be without it.

The judge is clang's own lexer (``clang -cc1 -dump-raw-tokens``), not rbcc's tokenizer: the program made
from the spec is compared with the program made from the same parse with a placeholder name in each
expression's place, and each placeholder must stand for a run of tokens with balanced brackets and no
';', brace, '#', comment, line break or token clang could not read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rbcc._specs.argdist import ArgdistSpec, parse_argdist
from rbcc._specs.gen import TraceOptions, argdist_program, trace_program
from rbcc._specs.points import Expr
from rbcc._specs.trace import TraceSpec, parse_trace
from rbcc.errors import ProbeSpecError

CLANG = shutil.which("clang")
pytestmark = pytest.mark.skipif(CLANG is None, reason="clang's lexer is the judge")

_SPLIT = "__rbcc_program_split"
_FORBIDDEN = {"semi", "l_brace", "r_brace", "hash", "hashhash", "comment", "unknown", "unclean", "eof"}
_PAIRS = {"l_paren": "r_paren", "l_square": "r_square"}


def _clang_tokens(text: str) -> list[tuple[str, str]]:
    """(kind, spelling) of each token clang reads in ``text``; blanks are kind "ws", tokens clang could
    only read by joining lines or replacing trigraphs are kind "unclean"."""
    with tempfile.NamedTemporaryFile("w", suffix=".c") as f:
        f.write(text)
        f.flush()
        done = subprocess.run(
            [CLANG, "-cc1", "-std=gnu11", "-dump-raw-tokens", f.name], capture_output=True, text=True, check=False
        )
    tokens = []
    # each token is "kind 'spelling'\t[flags]\tLoc=<file:line:column>", and spellings may span lines
    for n, record in enumerate(done.stderr.split(f"\tLoc=<{f.name}:")[:-1]):
        if n:
            record = record.split(">\n", 1)[1]  # the line:column of the token before
        kind, _, rest = record.partition(" ")
        spelling = rest[1 : rest.rindex("'\t")]
        if "UnClean=" in rest:
            kind = "unclean"
        elif kind == "unknown" and not spelling.strip():
            kind = "ws"
        tokens.append((kind, spelling))
    return tokens


def _assert_in_place(reference: str, program: str, slots: set[str]) -> None:
    """``program`` is ``reference`` with each slot name replaced by one self-contained expression."""
    tokens = _clang_tokens(f"{reference}\n{_SPLIT}\n{program}\n")
    split = tokens.index(("raw_identifier", _SPLIT))
    ref = [t for t in tokens[:split] if t[0] != "ws"]
    got = tokens[split + 1 :]
    j = 0

    def next_significant() -> tuple[str, str]:
        nonlocal j
        while j < len(got) and got[j][0] == "ws":
            j += 1
        assert j < len(got), "the program ends early"
        return got[j]

    for k, want in enumerate(ref):
        if want[1] not in slots:
            assert next_significant() == want, (want, program)
            j += 1
            continue
        follow = ref[k + 1]
        stack: list[str] = []
        run = 0
        while True:
            assert j < len(got), "the program ends inside an expression"
            t = got[j]
            if t[0] == "ws":
                assert "\n" not in t[1] and "\r" not in t[1], f"a line break in an expression: {program}"
                j += 1
                continue
            if not stack and t == follow:
                break
            assert t[0] not in _FORBIDDEN, (t, program)
            if t[0] in _PAIRS:
                stack.append(_PAIRS[t[0]])
            elif t[0] in _PAIRS.values():
                assert stack and stack.pop() == t[0], (t, program)
            run += 1
            j += 1
        assert run and not stack, program
    assert all(t[0] == "ws" for t in got[j:]), program


def _slot(n: int) -> Expr:
    return Expr(f"__rbcc_slot_{n}", 0)


def _program(text: str) -> str:
    # STRCMP's helpers come first: their literal is checked on its own (test_strcmp_literals_stay_literals)
    return text[text.index("#include <linux/ptrace.h>") :]


def _check_trace(spec: TraceSpec) -> None:
    program = _program(trace_program([spec], TraceOptions())[0])
    slotted = replace(
        spec,
        predicate=_slot(99) if spec.predicate else None,
        arguments=tuple(_slot(n) for n in range(len(spec.arguments))),
    )
    reference = _program(trace_program([slotted], TraceOptions())[0])
    _assert_in_place(reference, program, {f"__rbcc_slot_{n}" for n in (99, *range(len(spec.arguments)))})


def _check_argdist(spec: ArgdistSpec) -> None:
    program = _program(argdist_program([spec])[0])
    slotted = replace(
        spec, exprs=tuple(_slot(n) for n in range(len(spec.exprs))), filter=_slot(99) if spec.filter else None
    )
    reference = _program(argdist_program([slotted])[0])
    _assert_in_place(reference, program, {f"__rbcc_slot_{n}" for n in (99, *range(len(spec.exprs)))})


# what goes inside literals: brackets, separators, comment and directive openers, escaped quotes
_IN_LITERAL = ["(", ")", "[", "]", "{", "}", ";", ",", ":", "#", "/*", "*/", "//", "%:", "<%", "x", " ", "?"]
_IN_LITERAL += ["\\\\", '\\"', "\\'", "\\n", "'", '"', "\\"]
_ATOMS = ["arg1", "arg2", "1", "0x1f", "retval", "$retval", "sizeof(int)", "(char)arg1", "-1", "f(arg1, 2)"]
_OPERATORS = [" == ", " + ", "&&", ", ", " ? 1 : ", "->x == ", "[0] < "]
# pieces that can end an expression, start a statement or a directive, or hide either from one reader
_JUNK = ["(", ")", "[", "]", "{", "}", ";", ",", ":", "?", "#", "##", "%:", "<%", "%>", "<:", ":>", "??=", "??/"]
_JUNK += ["/*", "*/", "//", "\n", "\r", "\\", "\\\n", '"', "'", 'R"x(', ')x"', "L", "u8", "@user", "_Pragma"]
_JUNK += ["arg1", "1", " ", "\t", "+", "*", "==", "include", "bpf_trace_printk", "return", "if", "$pid", "\x00"]


def _literal(quote: str) -> st.SearchStrategy[str]:
    # raw quotes and lone backslashes among the pieces end the literal early or escape its end: the parse
    # decides what that is
    return st.lists(st.sampled_from(_IN_LITERAL), min_size=1, max_size=6).map(lambda p: quote + "".join(p) + quote)


_EXPR = st.recursive(
    st.one_of(st.sampled_from(_ATOMS), _literal('"'), _literal("'")),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(_OPERATORS), inner).map("".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"bpf_trace_printk({e}, 2)"),
        inner.map(lambda e: e.replace(" ", "\n", 1)),
    ),
    max_leaves=6,
)
_PIECE = st.one_of(
    _EXPR,
    st.lists(st.sampled_from(_JUNK), min_size=1, max_size=8).map("".join),
    st.tuples(_EXPR, st.lists(st.sampled_from(_JUNK), max_size=4).map("".join), _EXPR).map("".join),
)
_FUZZ = settings(max_examples=int(os.environ.get("RBCC_FUZZ_EXAMPLES", "150")), deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])  # fmt: skip


@_FUZZ
@given(_PIECE, _PIECE, _PIECE)
def test_fuzz_trace_predicates_and_arguments_stay_in_their_places(predicate: str, a1: str, a2: str) -> None:
    try:
        spec = parse_trace(f'r:c:f ({predicate}) "%d %d", {a1}, {a2}')
    except ProbeSpecError:
        event("refused")
        return
    event("parsed")
    _check_trace(spec)


@_FUZZ
@given(_PIECE, _PIECE, _PIECE)
def test_fuzz_argdist_expressions_and_filters_stay_in_their_places(e1: str, e2: str, filt: str) -> None:
    try:
        spec = parse_argdist(f"r:c:f(int x, char *s):u64,int:{e1},{e2}:{filt}")
    except ProbeSpecError:
        event("refused")
        return
    event("parsed")
    _check_argdist(spec)


@pytest.mark.parametrize(
    "spec",
    [
        'r:c:f (arg1 == \'(\' || STRCMP(")", arg2)) "%d %d", \'"\', "/* ; { #"[0]',
        "r:c:f (arg1 ==\n  1) \"%d\", (arg2 +\n  (int)\n'#')",
        'r:c:f ((char)arg1 == \'\\\'\' ? sizeof(struct task_struct *) : -1) "%d", "\\"); {"[1]',
        'r:c:f (bpf_trace_printk("%d\\n", 2, arg1), 1) "%d", (int)retval',
    ],
)
def test_tricky_but_valid_trace_specs_stay_in_their_places(spec: str) -> None:
    _check_trace(parse_trace(spec))


@pytest.mark.parametrize(
    "spec",
    [
        'r:c:f(int x, char *s):u64,int:"a:b#c"[0],(x ? 1 : 2):STRCMP("};", s) && x != \'#\'',
        "r:c:f(int x, char *s):u64,int:x\n  + 1,$retval:\n  x == 1#label: (with ; and {)",
    ],
)
def test_tricky_but_valid_argdist_specs_stay_in_their_places(spec: str) -> None:
    _check_argdist(parse_argdist(spec))


def test_the_judge_sees_an_escape() -> None:
    # the oracle itself: an expression that closes its 'if' early is caught (spec bypassing the parser)
    spec = parse_trace('r:c:f (arg1) "%d", arg2')
    bad = replace(spec, predicate=Expr("1)) bpf_trace_printk(0, 1); if ((1", 0))
    with pytest.raises(AssertionError):
        _check_trace(bad)
    with pytest.raises(AssertionError):
        _check_trace(replace(spec, arguments=(Expr("1\n#include <x.h>\n", 0),)))
    with pytest.raises(AssertionError):
        _check_trace(replace(spec, arguments=(Expr("1 /* ) */", 0),)))


def test_strcmp_literals_stay_literals() -> None:
    def helpers(spec: str) -> list[str]:
        text = trace_program([parse_trace(spec)], TraceOptions())[0]
        return [kind for kind, _ in _clang_tokens(text[: text.index("#include")]) if kind != "ws"]

    assert helpers('r:c:f (STRCMP("};#(/*", arg1) && STRCMP("\\\\", arg2))') == helpers(
        'r:c:f (STRCMP("a", arg1) && STRCMP("x", arg2))'
    )


@pytest.mark.parametrize("header", ["x.h>\n#define y 1\n#include <z.h", 'a.h"', "a\\\n.h", "a.h\x00"])
def test_an_include_option_cannot_end_its_include_line(header: str) -> None:
    with pytest.raises(ProbeSpecError, match="not a header name"):
        trace_program([parse_trace("t:syscalls:sys_enter_getppid")], TraceOptions(includes=(header,)))
    # a real header name still comes through as one #include line
    text = trace_program([parse_trace("t:syscalls:sys_enter_getppid")], TraceOptions(includes=("net/sock.h",)))[0]
    assert "#include <net/sock.h>\n" in text
