"""The probe-spec grammars of trace, argdist, funccount and stackcount: every example of bcc's help texts
parses to what it means; malformed specs point at the right column; nothing else ever comes out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rbcc._specs.argdist import Param, parse_argdist
from rbcc._specs.pattern import parse_pattern
from rbcc._specs.points import ProbePoint
from rbcc._specs.trace import parse_trace
from rbcc.errors import ProbeSpecError


def _point(spec: str) -> tuple[str, str, str]:
    p = parse_trace(spec).point
    return p.kind, p.library, p.function


@pytest.mark.parametrize(
    ("spec", "kind", "library", "function"),
    [
        ("do_sys_open", "p", "", "do_sys_open"),
        ("kfree_skb+0x12", "p", "", "kfree_skb"),
        ('do_sys_open "%s", arg2@user', "p", "", "do_sys_open"),
        ('sys_read (arg3 > 20000) "read %d bytes", arg3', "p", "", "sys_read"),
        ('r::do_sys_open "%llx", retval', "r", "", "do_sys_open"),
        ('c:open (arg2 == 42) "%s %d", arg1, arg2', "p", "c", "open"),
        ('c:malloc "size = %d", arg1', "p", "c", "malloc"),
        ('p:c:write (arg1 == 1) "writing %d bytes to STDOUT", arg3', "p", "c", "write"),
        ('r::__kmalloc (retval == 0) "kmalloc failed!"', "r", "", "__kmalloc"),
        ('r:c:malloc (retval) "allocated = %x", retval', "r", "c", "malloc"),
        ('t:block:block_rq_complete "sectors=%d", args->nr_sector', "t", "", "block_rq_complete"),
        ("u:pthread:pthread_create (arg4 != 0)", "u", "pthread", "pthread_create"),
        ("u:pthread:libpthread:pthread_create (arg4 != 0)", "u", "pthread", "pthread_create"),
        ('p::SyS_nanosleep(struct timespec *ts) "sleep for %lld ns", ts->tv_nsec', "p", "", "SyS_nanosleep"),
        ("__x64_sys_nanosleep", "p", "", "__x64_sys_nanosleep"),
        ("__x64_sys_clone", "p", "", "__x64_sys_clone"),
        ('p::uprobe_register(struct inode *inode) "a_ops = %llx", inode->i_mapping->a_ops', "p", "", "uprobe_register"),
        (
            'p::__account_cfs_rq_runtime(struct cfs_rq *cfs_rq) "%d", cfs_rq->runtime_remaining',
            "p",
            "",
            "__account_cfs_rq_runtime",
        ),
        ("udpv6_sendmsg(struct sock *sk) (sk->sk_dport == 13568)", "p", "", "udpv6_sendmsg"),
        ('mntns_install "users = %d", $task->fs->users', "p", "", "mntns_install"),
        ("p:c:inet_pton", "p", "c", "inet_pton"),
        ("r:/usr/lib/libx.so.1:f", "r", "/usr/lib/libx.so.1", "f"),
    ],
)
def test_every_trace_help_example_parses(spec: str, kind: str, library: str, function: str) -> None:
    assert _point(spec) == (kind, library, function)


def test_trace_parts_are_described() -> None:
    s = parse_trace('sys_read (arg3 > 20000) "read %d bytes", arg3')
    assert s.predicate is not None and s.predicate.text == "arg3 > 20000"
    assert s.format == "read %d bytes" and [c.text for c in s.conversions] == ["%d"]
    assert [a.text for a in s.arguments] == ["arg3"] and s.signature is None
    assert parse_trace("kfree_skb+0x12").point.offset == 0x12
    assert parse_trace("kfree_skb+18").point.offset == 18
    user = parse_trace('do_sys_open "%s", arg2@user').arguments[0]
    assert (user.text, user.user) == ("arg2", True)
    sig = parse_trace('p::SyS_nanosleep(struct timespec *ts) "sleep for %lld ns", ts->tv_nsec')
    assert sig.signature == "struct timespec *ts"
    assert (sig.conversions[0].length, sig.conversions[0].conv, sig.conversions[0].c_type) == ("ll", "d", "long long")
    usdt = parse_trace("u:pthread:libpthread:pthread_create (arg4 != 0)")
    assert usdt.point == ProbePoint("u", library="pthread", function="pthread_create", provider="libpthread")
    assert usdt.display == "libpthread:pthread_create" and usdt.format is None
    tp = parse_trace('t:syscalls:sys_enter_openat "%s", args->filename').point
    assert (tp.category, tp.function, tp.tracepoint, tp.is_kernel) == (
        "syscalls",
        "sys_enter_openat",
        "syscalls:sys_enter_openat",
        False,
    )
    # a predicate with a string literal holding parentheses and commas
    s = parse_trace('c:open (STRCMP("a,(b", arg1)) "%s, %d", arg1, (arg2 & (1 | 2))')
    assert s.predicate is not None and s.predicate.text == 'STRCMP("a,(b", arg1)'
    assert [a.text for a in s.arguments] == ["arg1", "(arg2 & (1 | 2))"]


def test_trace_messages_render_like_printf() -> None:
    s = parse_trace('c:f "%5s|%-3d|%%|%c|%x|%p|%llu", arg1, arg2, arg3, arg4, arg5, arg6')
    assert [c.c_type for c in s.conversions[1:]] == ["int", "char", "unsigned int", "u64", "unsigned long long"]
    assert s.message(["ab", 7, 65, 255, 4096, 12]) == "   ab|7  |%|A|ff|0x1000|12"


@pytest.mark.parametrize(
    ("spec", "kind", "point", "types", "exprs", "filt", "label"),
    [
        ("p::__kmalloc(u64 size):u64:size", "hist", ("p", "", "__kmalloc"), ("u64",), ("size",), None, None),
        ("p:c:malloc(size_t size):size_t:size:size==16", "freq", ("p", "c", "malloc"), ("size_t",), ("size",), "size==16", None),  # noqa: E501
        ("r:c:gets():char*:(char*)$retval#snooped strings", "freq", ("r", "c", "gets"), ("char*",), ("(char*)$retval",), None, "snooped strings"),  # noqa: E501
        ("r::__kmalloc(size_t size):u64:$latency/$entry(size)#ns per byte", "hist", ("r", "", "__kmalloc"), ("u64",), ("$latency/$entry(size)",), None, "ns per byte"),  # noqa: E501
        ("p::__kmalloc(size_t sz, gfp_t flags):size_t:sz:flags&GFP_ATOMIC", "freq", ("p", "", "__kmalloc"), ("size_t",), ("sz",), "flags&GFP_ATOMIC", None),  # noqa: E501
        ("p:c:write(int fd):int:fd", "freq", ("p", "c", "write"), ("int",), ("fd",), None, None),
        ("r:c:read()", "hist", ("r", "c", "read"), ("int",), ("$retval",), None, None),
        ("r::__vfs_read():u32:$PID:$latency > 100000", "freq", ("r", "", "__vfs_read"), ("u32",), ("$PID",), "$latency > 100000", None),  # noqa: E501
        ("r::__vfs_read(void *file, void *buf, size_t count):size_t:\n            $entry(count):$latency > 1000000", "hist", ("r", "", "__vfs_read"), ("size_t",), ("$entry(count)",), "$latency > 1000000", None),  # noqa: E501
        ("p:c:write(int fd, const void *buf, size_t count):size_t:count:fd==1", "hist", ("p", "c", "write"), ("size_t",), ("count",), "fd==1", None),  # noqa: E501
        ("p:c:fork()#fork calls", "freq", ("p", "c", "fork"), ("u64",), ("1",), None, "fork calls"),
        ("t:block:block_rq_complete():u32:args->nr_sector", "hist", ("t", "", "block_rq_complete"), ("u32",), ("args->nr_sector",), None, None),  # noqa: E501
        ("t:irq:irq_handler_entry():int:args->irq", "freq", ("t", "", "irq_handler_entry"), ("int",), ("args->irq",), None, None),  # noqa: E501
        ("u:pthread:pthread_start():u64:arg2", "freq", ("u", "pthread", "pthread_start"), ("u64",), ("arg2",), None, None),  # noqa: E501
        ("p:c:sleep(u32 seconds):u32:seconds", "hist", ("p", "c", "sleep"), ("u32",), ("seconds",), None, None),
        ("p:c:nanosleep(struct timespec *req):long:req->tv_nsec", "hist", ("p", "c", "nanosleep"), ("long",), ("req->tv_nsec",), None, None),  # noqa: E501
        ("p:c:write(int fd, char* buf, size_t len):char*:buf:fd==1", "freq", ("p", "c", "write"), ("char*",), ("buf",), "fd==1", None),  # noqa: E501
        ("p::__account_cfs_rq_runtime(struct cfs_rq *cfs_rq):s64:cfs_rq->runtime_remaining", "freq", ("p", "", "__account_cfs_rq_runtime"), ("s64",), ("cfs_rq->runtime_remaining",), None, None),  # noqa: E501
        ("p:c:write(int fd):u32,int:$PID,fd", "freq", ("p", "c", "write"), ("u32", "int"), ("$PID", "fd"), None, None),
    ],
)  # fmt: skip
def test_every_argdist_help_example_parses(
    spec: str,
    kind: str,
    point: tuple[str, str, str],
    types: tuple[str, ...],
    exprs: tuple[str, ...],
    filt: str | None,
    label: str | None,
) -> None:
    s = parse_argdist(spec, kind)
    category_or_library = s.point.category or s.point.library
    assert (s.point.kind, category_or_library if s.point.kind != "t" else "", s.point.function) == point
    assert s.types == types and tuple(e.text for e in s.exprs) == exprs
    assert (s.filter.text if s.filter else None) == filt and s.label == label
    assert s.kind == kind and s.title == (label or spec)


def test_argdist_signature_and_defaults() -> None:
    s = parse_argdist("p:c:write(int fd, const void *buf, size_t count):size_t:count:fd==1", "hist")
    assert s.params == (Param("int", "fd"), Param("const void *", "buf"), Param("size_t", "count"))
    assert parse_argdist("t:block:block_rq_complete():u32:args->nr_sector").point.category == "block"
    assert parse_argdist("p:c:fork()").default_expr and parse_argdist("p:c:fork()").exprs[0].text == "1"
    assert parse_argdist("r:c:read()").types == ("int",)


@pytest.mark.parametrize(
    ("spec", "kind", "library", "regex", "matching", "not_matching"),
    [
        ("vfs_*", "p", "", "^vfs_.*$", "vfs_read", "xvfs_read"),
        ("t:sched:sched_fork", "t", "", "^sched:sched_fork$", "sched:sched_fork", "sched:sched_forks"),
        ("u:node:gc*", "u", "node", "^gc.*$", "gc__start", "xgc"),
        ("c:malloc", "p", "c", "^malloc$", "malloc", "malloc2"),
        ("go:os.*", "p", "go", r"^os\..*$", "os.Open", "osXOpen"),
        ("./test:read*", "p", "./test", "^read.*$", "readall", "xread"),
        ("submit_bio", "p", "", "^submit_bio$", "submit_bio", "submit_bio2"),
        ("t:sched:*", "t", "", "^sched:.*$", "sched:sched_switch", "irq:sched"),
        ("t:syscalls:sys_enter_getpp*", "t", "", "^syscalls:sys_enter_getpp.*$", "syscalls:sys_enter_getppid", "syscalls:sys_exit_getppid"),  # noqa: E501
        ("p:c:malloc", "p", "c", "^malloc$", "malloc", "calloc"),
        ("u:node:*", "u", "node", "^.*$", "anything", None),
    ],
)  # fmt: skip
def test_every_funccount_and_stackcount_example_parses(
    spec: str, kind: str, library: str, regex: str, matching: str, not_matching: str | None
) -> None:
    p = parse_pattern(spec)
    assert (p.kind, p.library, p.regex) == (kind, library, regex)
    assert p.matches(matching) and (not_matching is None or not p.matches(not_matching))
    assert p.is_kernel == (kind == "t" or (kind == "p" and not library))


def test_regex_patterns() -> None:
    p = parse_pattern("^vfs.*", use_regex=True)
    assert p.regex == "^vfs.*" and p.matches("vfs_read") and not p.matches("xvfs")
    assert parse_pattern("^tcp_send.*", use_regex=True).matches("tcp_sendmsg")


def _caret(call: object, spec: str) -> tuple[int, str]:
    with pytest.raises(ProbeSpecError) as info:
        call(spec)  # type: ignore[operator]
    e = info.value
    assert e.spec == spec
    lines = str(e).splitlines()
    # the message quotes the spec, and the caret line's ^ sits under the offending column
    assert lines[-2] == "    " + spec.replace("\n", " ").replace("\t", " ")
    assert lines[-1] == "    " + " " * e.position + "^"
    return e.position, lines[0]


@pytest.mark.parametrize(
    ("spec", "column", "words"),
    [
        ("q:a:b", 0, "unknown probe type 'q'"),
        ('foo "%d"', 5, "'%d' has no argument"),
        ('foo "%d", arg1, arg2', 16, "more arguments"),
        ("foo (arg1", 4, "unmatched '('"),
        ('foo "abc', 4, "unterminated format string"),
        ('foo "%q", arg1', 5, "unknown format specifier"),
        ('t:a:b "%d", arg1', 12, "tracepoints have no 'arg1'"),
        ('foo "%d" arg1', 9, "expected ','"),
        ('foo "%d", $bogus', 10, "unknown special variable '$bogus'"),
        ('p::foo "%d", retval', 13, "only known in return probes"),
        ("kfree_skb+0xzz", 10, "invalid offset"),
        ("r::f+1", 4, "return probe takes no offset"),
        ('f "%d", arg1,', 13, "empty argument"),
        ('f "%d", arg7', 8, "arg1 to arg6"),
        ('f "%d", x@user', 9, "@user follows an argument"),
        ("u::foo", 2, "needs the library"),
        ("u:lib:a:b:c", 9, "u:library:probe"),
        ("t::ev", 2, "missing tracepoint category"),
        ("t:sched:sched-switch", 13, "invalid tracepoint event"),
        ("t:a:b(int x)", 5, "take no signature"),
        ('f (x]) "a"', 4, "does not close"),
        ("   ", 3, "expected a probe"),
        ('f "%ls", arg1', 3, "h, l and ll go with"),
    ],
)
def test_malformed_trace_specs_point_at_the_problem(spec: str, column: int, words: str) -> None:
    position, first = _caret(parse_trace, spec)
    assert position == column and words in first


@pytest.mark.parametrize(
    ("spec", "column", "words"),
    [
        ("p:c:write", 9, "signature in parentheses"),
        ("p::f():int", 10, "needs its expression"),
        ("p::f(int):int:x", 8, "'type name'"),
        ("p::f():int:$entry(x)", 11, "only known in return probes"),
        ("r::f():int:$entry(x)", 18, "no such parameter"),
        ("x::f()", 0, "unknown probe type 'x'"),
        ("p::f():u64,u64:a", 15, "2 type(s) but 1 expression(s)"),
        ("p::f()#", 6, "empty #label"),
        ("p::f", 4, "signature in parentheses"),
        ("p:c", 3, "expected {p,r,t,u}"),
        ("p::f():a:b:c:d:e", 12, "too many"),
        ("t:block:rq(int x):u32:x", 11, "take no signature"),
        ("t:block:rq():u32:arg1", 17, "tracepoints have no 'arg1'"),
        ("p::f(int x):u32:x:$bogus", 18, "unknown special variable"),
        ("p::f(int x):u32,u64:x,x", 0, ""),
        ("p::f(int x):9x:x", 12, "invalid type"),
    ],
)
def test_malformed_argdist_specs_point_at_the_problem(spec: str, column: int, words: str) -> None:
    if spec == "p::f(int x):u32,u64:x,x":  # well-formed for counts, not for a histogram
        parse_argdist(spec, "freq")
        position, first = _caret(lambda s: parse_argdist(s, "hist"), spec)
        assert position == 20 and "one expression" in first
        return
    position, first = _caret(parse_argdist, spec)
    assert position == column and words in first


def test_a_histogram_needs_an_expression() -> None:
    position, first = _caret(lambda s: parse_argdist(s, "hist"), "p:c:write(int fd)")
    assert position == 17 and "needs :type:expr" in first


@pytest.mark.parametrize(
    ("spec", "regex", "column", "words"),
    [
        ("a:b:c:d", False, 5, "too many"),
        ("r:c:x", False, 0, "unknown probe type 'r'"),
        ("t::x", False, 2, "t:category:event"),
        ("u::x", False, 2, "needs the library"),
        ("c:", False, 2, "missing pattern"),
        ("^vfs.*(", True, 6, "invalid regular expression"),
        ("t:sched:a(", True, 2 + 7, "invalid regular expression"),
    ],
)
def test_malformed_patterns_point_at_the_problem(spec: str, regex: bool, column: int, words: str) -> None:
    position, first = _caret(lambda s: parse_pattern(s, regex), spec)
    assert position == column and words in first


_TOKENS = [
    *"prtu:()\",# +*[]{}'\\\n\t",
    "::",
    "arg1",
    "arg7",
    "@user",
    "retval",
    "$retval",
    "$task",
    "$latency",
    "$entry(",
    "$PID",
    "%d",
    "%s",
    "%llx",
    "%",
    "%%",
    "0x1f",
    "f",
    "c",
    "sched",
    "args->x",
    "==",
    "int",
    "char*",
    "u64",
]


def _only_probe_spec_errors(text: str, flag: bool) -> None:
    for parse in (
        parse_trace,
        lambda s: parse_argdist(s, "hist" if flag else "freq"),
        lambda s: parse_pattern(s, flag),
    ):
        try:
            parse(text)
        except ProbeSpecError as e:
            assert e.spec == text and e.position is not None and 0 <= e.position <= len(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(), st.booleans())
def test_fuzz_arbitrary_text_raises_only_probe_spec_errors(text: str, flag: bool) -> None:
    _only_probe_spec_errors(text, flag)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join), st.booleans())
def test_fuzz_grammar_tokens_raise_only_probe_spec_errors(text: str, flag: bool) -> None:
    _only_probe_spec_errors(text, flag)


# -- probe specs are untrusted: an expression is one C expression, and nothing else ---------------------

_ISSUE_PREDICATE = 't:syscalls:sys_enter_getppid (1 /* ( ( */ )) bpf_trace_printk("x"); if ((1 /* ) ) */) "%d", 1'


def _trace(spec: str) -> object:
    return parse_trace(spec)


def _argdist(spec: str) -> object:
    return parse_argdist(spec)


def _refused_at(parse: object, spec: str, at: str, words: str) -> None:
    position, first = _caret(parse, spec)
    assert position == spec.index(at), (position, first)
    assert words in first, first


@pytest.mark.parametrize(
    ("parse", "spec", "at"),
    [
        (_trace, _ISSUE_PREDICATE, "/*"),
        (_trace, 'c:f "%d %d", arg1 /* , */, arg2', "/*"),
        (_trace, 'c:f "%d", arg1 // x', "//"),
        (_trace, 'c:f(int x /* ( */ ) { bpf_trace_printk("x"); } int g(int y /* ) */)', "/*"),
        (_argdist, "p:c:f(int x):int:x /* : */", "/*"),
        (_argdist, 'p:c:f(int x):int:x:(1 /* ( */ )) bpf_trace_printk("x"); if ((1 /* ) */)', "/*"),
        (_argdist, "p:c:f(int x /* ) */):int:x", "/*"),
    ],
)
def test_comments_cannot_hide_where_an_expression_ends(parse: object, spec: str, at: str) -> None:
    _refused_at(parse, spec, at, "comments are not allowed")


@pytest.mark.parametrize(
    ("parse", "spec", "at", "words"),
    [
        (_trace, 't:syscalls:sys_enter_getppid "%d", 1\n#include <x.h>\n', "#", "no preprocessor directives"),
        (_trace, 'c:f (1\n#define X\n) "%d", arg1', "#", "no preprocessor directives"),
        (_trace, "c:f(int x\n#include <x.h>\n)", "#", "no preprocessor directives"),
        (_trace, 'c:f "%s", "a\\\n#include <x.h>"', "\\", "backslash before a line break"),
        (_trace, 'c:f "%s", "a\n#include <x.h>"', '"a', "unterminated string literal"),
        (_argdist, "p:c:f(int x):int:(x\n#include <x.h>\n)", "#", "no preprocessor directives"),
        (_argdist, "p:c:f(int x):int:x:(x\n#include <x.h>\n)", "#", "no preprocessor directives"),
        (_argdist, "p:c:f(int x):int:x:(x\n%:include <x.h>\n)", "%:", "digraph"),
        (_argdist, "p:c:f(int x):int:x:x ==\\\n1", "\\", "backslash outside"),
    ],
)
def test_a_newline_cannot_start_a_directive(parse: object, spec: str, at: str, words: str) -> None:
    _refused_at(parse, spec, at, words)


def test_newlines_between_tokens_are_blanks_that_stay_out_of_the_c() -> None:
    s = parse_trace('c:f(int x,\n char *s) (x ==\n 1) "%d", x\r\n+ 1')
    assert s.signature == "int x,  char *s" and s.predicate is not None and s.predicate.text == "x ==  1"
    assert [a.text for a in s.arguments] == ["x  + 1"] and s.arguments[0].length == len("x\r\n+ 1")
    a = parse_argdist("p:c:f(int x):int:x\n+ 1:x >\n 0")
    assert a.exprs[0].text == "x + 1" and a.filter is not None and a.filter.text == "x >  0"


@pytest.mark.parametrize(
    ("parse", "spec", "at", "words"),
    [
        (_trace, 'c:f (1)) bpf_trace_printk("x"); if ((1) "%d", arg1', ") bpf", 'expected a "format string"'),
        (_trace, 'c:f (arg1; 1) "%d", arg1', ";", "';' would end the statement"),
        (_trace, 'c:f (({ bpf_trace_printk("x", 2); 1; }))', "{", "no blocks"),
        (_trace, 'c:f "%d", (int){ 1 }', "{", "no blocks or compound literals"),
        (_trace, "c:f (arg1 <% 1 %>)", "<%", "digraph"),
        (_trace, "c:f (arg1 ??< 1 ??>)", "??<", "trigraph"),
        (_trace, 'c:f (STRCMP("a??/", arg1))', "??/", "trigraph"),
        (_trace, 'c:f (_Pragma("GCC poison x") 1)', "_Pragma", "preprocessor directive"),
        (_trace, 'c:f "%d", R"(a)"[0]', '"(', "put a blank between"),
        (_trace, 'c:f "%d", R"x(")x" + 1', ')x"', "unmatched ')'"),
        (_trace, "c:f \"%d\", 1'0'", "'", "put a blank between"),
        (_trace, 'c:f "%d", arg1$pid', "$pid", "put a blank between"),
        (_trace, 'c:f "%d", arg1 \\ 1', "\\", "backslash outside"),
        (_trace, 'c:f "%d", arg1 == \x01', "\x01", "unexpected character"),
        (_trace, 'c:f "%d", "\x00"', "\x00", "unprintable character"),
        (_trace, 'c:f "%d", arg1 == `x`', "`", "unexpected character"),
        (_trace, 'c:f "%d", arg1 @user', "@", "@user follows an argument"),
        (_argdist, "p:c:f(int x):int:x@user", "@", "'@' is not C"),
        (_argdist, 'p:c:f(int x):int:x:x; bpf_trace_printk("x", 2)', ";", "';' would end the statement"),
        (_argdist, "p:c:f(int x):int:x:x }", "}", "unmatched '}'"),
        (_argdist, "p:c:f(int x):int:x:(x })", "}", "does not close"),
        (_argdist, "p:c:f(int x):int:x:(x {})", "{", "no blocks"),
        (_argdist, "p:c:f(int x) { return 0; } int g(int y):int:y", "{", "no place in a signature"),
        (_argdist, "p:c:f(int x; int y):int:x", ";", "no place in a signature"),
        (_trace, 'c:f(int x) { bpf_trace_printk("x", 2); }', "{", 'expected a "format string"'),
        (_trace, "c:f(int x, char s[16]; evil()) (x)", ";", "no place in a signature"),
    ],
)
def test_what_could_end_a_statement_or_open_a_block_is_refused(parse: object, spec: str, at: str, words: str) -> None:
    _refused_at(parse, spec, at, words)


@pytest.mark.parametrize(
    ("parse", "spec", "at", "words"),
    [
        (_trace, 'c:f (arg1 == == 1) "%d", arg1', "== 1", "expected a value after '=='"),
        (_trace, "c:f (arg1 2)", "2", "missing an operator between 'arg1' and '2'"),
        (_trace, 'c:f "%d", arg1 +', "", "a value is missing"),
        (_trace, "c:f (arg1 ? 1)", "?", "'?' without its ':'"),
        (_trace, "c:f (arg1 : 1)", ":", "':' without a '?'"),
        (_trace, "c:f (arg1-> == 1)", "== 1", "field name after '->'"),
        (_trace, "c:f (arg1[] == 1)", "] ==", "empty expression"),
        (_trace, "c:f (() + 1)", ") +", "empty parentheses"),
        (_trace, "c:f ((arg1 == ) + 1)", ") +", "a value is missing"),
        (_argdist, "p:c:f(int x):int:x:x == == 1", "== 1", "expected a value after '=='"),
        (_argdist, "p:c:f(int x):int:x:x ==", "", "a value is missing"),
        (_argdist, "p:c:f(int x):int:x ? 1 : 2", "?", "'?' without its ':'"),
        (_argdist, "p:c:f(int x):int,int:x,x y", "y", "missing an operator"),
    ],
)
def test_an_expression_is_one_expression(parse: object, spec: str, at: str, words: str) -> None:
    position, first = _caret(parse, spec)
    assert position == (spec.rindex(at) if at else len(spec)) and words in first, (position, first)


@pytest.mark.parametrize(
    "spec",
    [
        'c:f ((char)arg1 != 0 ? sizeof(struct task_struct *) : -1) "%d", *(int *)arg2',
        "c:f (STRCMP(\"a;{b}#/*\", arg1) && arg2 == '\\'') \"%s %c\", arg1, ')'",
        'c:f ((int (*)(int))arg1 != 0) "%d %d %d", ~0ULL, !arg1, sizeof arg1',
        'c:f "%d %d", BPF_CORE_READ(t, mm, arg_start) >> 1, (offsetof(struct x, y), 1) ',
        'r::f (retval > 0 ? 1 : 0) "%d %d %s", $pid, $task->fs->users, "a" "b"',
        'do_sys_open "%s %d", arg2@user, arg1[1].x->y',
        'c:f (arg1 ?: 2) "%d %d %d", L\'x\', u8"\\x41"[0], 0x1p-3 > 1.e+5',
        "c:f(int x, char buf[16], void (*cb)(int), ...) (x > 0 && buf[0] == '#')",
    ],
)
def test_what_bcc_users_write_still_parses(spec: str) -> None:
    parse_trace(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "r::__kmalloc(size_t size):u64:$latency/$entry( size ):$entry(size) > 0 && (u64)$retval != 0",
        "p:c:write(int fd, const char __user *buf):char*,int:buf,fd:STRCMP(\"a:b\", buf) || fd == (int)':'",
        "t:syscalls:sys_enter_read():u64:args->count:(args->fd ? 1 : 0) && sizeof(struct task_struct) > 1",
        "p:/usr//lib/libc.so.6:write(int fd):int:fd#label with // and 'quotes'",
        "p:/tmp/it's/lib.so:write(int fd):int:fd",
    ],
)
def test_what_argdist_users_write_still_parses(spec: str) -> None:
    parse_argdist(spec)


@pytest.mark.parametrize(
    ("spec", "at", "words"),
    [
        ('c:f (STRCMP(arg1, "a"))', "STRCMP", "STRCMP takes a string literal"),
        ('c:f (STRCMP("a\\"b", arg1))', '"a', "STRCMP's string must not"),
        ('c:f (STRCMP("", arg1))', '""', "STRCMP's string must not"),
        ('c:f (STRCMP(L"a", arg1))', 'L"', "STRCMP's string must not"),
    ],
)
def test_strcmp_takes_a_plain_string_literal(spec: str, at: str, words: str) -> None:
    _refused_at(_trace, spec, at, words)


@pytest.mark.parametrize(
    ("fmt", "at", "words"),
    [
        ("%99999999999999999999d", "9", "a width of 255 at most"),
        ("%.99999999d", "9", "a precision of 255 at most"),
        ("%256s", "2", "a width of 255 at most"),
        ("%-08.300llx", "3", "a precision of 255 at most"),
        ("%" + "9" * 5000 + "d", "9", "a width of 255 at most"),  # more digits than int() takes
    ],
)
def test_format_widths_and_precisions_are_bounded(fmt: str, at: str, words: str) -> None:
    spec = f'c:f "{fmt}", arg1'
    if fmt.startswith("%-"):
        at = "300"
    _refused_at(_trace, spec, at, words)


def test_widths_up_to_the_bound_render() -> None:
    s = parse_trace('c:f "%255d|%.255s|%-255.255x", arg1, arg2, arg3')
    first, second, third = s.message([7, "ab", 255]).split("|")
    assert len(first) == 255 and first.endswith("7") and second == "ab" and len(third) == 255
