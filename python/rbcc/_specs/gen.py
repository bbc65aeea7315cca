"""The BPF C for parsed probe specs (see :mod:`rbcc._specs`): trace's event probes, argdist's
histograms and counts, funccount's and stackcount's counters. Pure functions of the specs and options:
nothing here touches the kernel, except reading a tracepoint's field declarations when asked to.

Strings are read from the address space they live in: uprobe and USDT arguments and syscall
tracepoint pointers from user memory, kernel pointers from kernel memory, ``argN@user`` (or a
``__user`` parameter) from user memory.

Each probe notes where the spec's expressions and signature landed in the C (:class:`Placed`), so that
clang's complaints about them can point into the spec (:func:`spec_error`) rather than at generated lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import TypeVar

from ..errors import ProbeSpecError
from ..utils import StrcmpRewrite
from .argdist import ArgdistSpec
from .pattern import PatternSpec
from .points import Expr, ProbePoint
from .trace import TRACE_VARIABLES, TraceSpec

FieldDecls = Callable[[str, str], dict[str, str]]
_P = TypeVar("_P", bound="TraceProbe | ArgdistProbe")


def tracepoint_fields(category: str, event: str) -> dict[str, str]:
    """name -> declaration of a tracepoint's fields, from tracefs's format file ({} if unreadable)."""
    from .. import _core

    try:
        with open(os.path.join(_core.tracefs(), "events", category, event, "format")) as f:
            text = f.read()
    except (OSError, Exception):  # noqa: BLE001 - no tracefs, no such event: the fields stay unknown
        return {}
    out = {}
    for m in re.finditer(r"field:([^;]*);", text):
        decl = m.group(1).strip()
        name = re.sub(r"\[.*?\]", "", decl).split()[-1].lstrip("*") if decl.split() else ""
        out[name] = decl
    return out


@dataclass(frozen=True)
class Placed:
    """A piece of a spec in the generated C: ``written`` at ``position`` of ``spec``, which the C has as
    ``c_text`` (aliases and STRCMP rewritten) on ``line`` (1-based) from byte ``column`` (0-based)."""

    spec: str
    position: int
    written: str
    c_text: str
    line: int
    column: int

    def covers(self, column: int) -> bool:
        return self.column <= column <= self.column + len(self.c_text.encode())

    def spec_position(self, column: int) -> int:
        """Where in the spec the C's byte ``column`` of this line comes from: the same character where the
        C has the spec's text, else where the rewritten piece it is in starts."""
        k = len(self.c_text.encode()[: max(0, column - self.column)].decode(errors="ignore"))
        at = 0
        for a, b, size in SequenceMatcher(None, self.written, self.c_text, autojunk=False).get_matching_blocks():
            if b <= k < b + size:
                return self.position + a + (k - b)
            if b + size <= k:
                at = a + size
        return self.position + at


class _Marks:
    """The spec's pieces are wrapped in control characters (which rbcc._specs.tokens keeps out of every piece)
    while the C is put together; :meth:`place` takes them out and notes each piece's line and column."""

    def __init__(self) -> None:
        self.pieces: list[tuple[int, str, int, str]] = []

    def __call__(self, probe: int, spec: str, position: int, length: int, c_text: str) -> str:
        if not length:  # not in the spec (a default expression)
            return c_text
        self.pieces.append((probe, spec, position, spec[position : position + length]))
        return f"\x01{len(self.pieces) - 1}\x02{c_text}\x03"

    def place(self, text: str, probes: list[_P]) -> tuple[str, list[_P]]:
        """``text`` without the marks, and ``probes`` with the pieces each of them placed."""
        out: list[str] = []
        placed: dict[int, list[Placed]] = {}
        line, line_text = 1, ""  # where the output has got to: its line, and that line's text so far

        def emit(chunk: str) -> None:
            nonlocal line, line_text
            out.append(chunk)
            line += chunk.count("\n")
            line_text = chunk[chunk.rfind("\n") + 1 :] if "\n" in chunk else line_text + chunk

        last = 0
        for m in re.finditer(r"\x01(\d+)\x02([^\x03]*)\x03", text):
            emit(text[last : m.start()])
            probe, spec, position, written = self.pieces[int(m.group(1))]
            placed.setdefault(probe, []).append(
                Placed(spec, position, written, m.group(2), line, len(line_text.encode()))
            )
            emit(m.group(2))
            last = m.end()
        emit(text[last:])
        return "".join(out), [replace(p, placed=tuple(placed.get(n, ()))) for n, p in enumerate(probes)]


# clang's errors, as rbcc.BPF reports them for a program given as text
_DIAGNOSTIC = re.compile(r"^<bpf text>:(\d+):(\d+): (?:fatal )?error: (.*)$", re.M)


def spec_error(message: str, probes: Sequence[TraceProbe | ArgdistProbe]) -> ProbeSpecError | None:
    """clang's first error (in a CompileError's ``message``) that is in a spec's expression or signature, as
    a ProbeSpecError pointing there in the spec; None if no error is in one."""
    placed = [piece for probe in probes for piece in probe.placed]
    for m in _DIAGNOSTIC.finditer(message):
        line, column, what = int(m.group(1)), int(m.group(2)) - 1, m.group(3)
        on_line = [p for p in placed if p.line == line]
        hit = next((p for p in on_line if p.covers(column)), None)
        if hit is None and len(on_line) == 1:
            # e.g. a type clash reported at the '=' the piece is assigned with: the piece is the culprit
            hit, column = on_line[0], on_line[0].column
        if hit is not None:
            return ProbeSpecError(f"clang: {what}", hit.spec, hit.spec_position(column))
    return None


def _identifier(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _ctx_decl(point: ProbePoint) -> tuple[str, str]:
    """The probe function's context parameter and its name."""
    if point.kind == "t":
        return f"struct tracepoint__{point.category}__{point.function} *args", "args"
    return "struct pt_regs *ctx", "ctx"


def _usdt_reads(text: str) -> tuple[str, str]:
    """USDT arguments argN become locals read with bpf_usdt_readarg: (declarations, rewritten text)."""
    used = sorted({int(n) for n in re.findall(r"\barg(\d+)\b", text)})
    decls = "".join(f"    long __arg{n} = 0;\n    bpf_usdt_readarg({n}, ctx, &__arg{n});\n" for n in used)
    return decls, re.sub(r"\barg(\d+)\b", r"__arg\1", text)


def _trace_alias(point: ProbePoint, text: str) -> str:
    if point.kind != "u":
        text = re.sub(r"\barg([1-6])\b", r"PT_REGS_PARM\1(ctx)", text)
    text = re.sub(r"(?<![\w$])\$?retval\b", "PT_REGS_RC(ctx)", text)
    for name, c in TRACE_VARIABLES.items():
        text = re.sub(re.escape(name) + r"\b", _literally(c), text)
    return text


def _literally(text: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement that is ``text`` as it is (a replacement string would read its backslashes)."""
    return lambda _match: text


@dataclass(frozen=True)
class TraceOptions:
    """trace's options that shape the C."""

    string_size: int = 80
    tgid: int | None = None  # -p
    tid: int | None = None  # -L
    uid: int | None = None  # --uid
    exclude_tgid: int | None = None  # trace's own pid, unless -S
    kernel_stack: bool = False
    user_stack: bool = False
    cgroup: bool = False  # -c: the __cgroup array holds the cgroup to keep
    includes: tuple[str, ...] = ()
    bin_cmp: bool = False


@dataclass(frozen=True)
class TraceProbe:
    """One trace probe in the program: its spec and the names its C declares."""

    spec: TraceSpec
    function: str
    events: str
    stacks: str
    string_fields: tuple[int, ...] = field(default=())
    placed: tuple[Placed, ...] = ()


def _string_read(spec: TraceSpec, expr: Expr, c_expr: str, dst: str, fields: FieldDecls | None) -> str:
    point = spec.point
    if point.kind == "t":
        m = re.fullmatch(r"args->(\w+)", expr.text.strip())
        decl = fields(point.category, point.function).get(m.group(1), "") if (m and fields) else ""
        if m and decl.startswith("__data_loc"):
            return f"TP_DATA_LOC_READ_STR(&{dst}, {m.group(1)}, sizeof({dst}));"
        space = "user" if point.category == "syscalls" else "kernel"
    elif point.is_user:
        space = "user"
    else:
        user_params = {
            p.split()[-1].lstrip("*")
            for p in (spec.signature or "").split(",")
            if "__user" in p.split() or "__user" in p.replace("*", " ").split()
        }
        space = "user" if expr.user or expr.text.strip() in user_params else "kernel"
    return f"bpf_probe_read_{space}_str(&{dst}, sizeof({dst}), (void *)({c_expr}));"


def _filters(opts: TraceOptions, point: ProbePoint) -> str:
    lines = []
    if opts.tid is not None:
        lines.append(f"if (__pid != {opts.tid}) return 0;")
    elif opts.tgid is not None:
        lines.append(f"if (__tgid != {opts.tgid}) return 0;")
    elif opts.exclude_tgid is not None:
        lines.append(f"if (__tgid == {opts.exclude_tgid}) return 0;")
    if opts.uid is not None:
        lines.append(f"if (__uid != {opts.uid}) return 0;")
    if opts.cgroup:
        lines.append("if (__cgroup.check_current_task(0) <= 0) return 0;")
    return "".join(f"    {line}\n" for line in lines)


def trace_program(
    specs: Sequence[TraceSpec], opts: TraceOptions, fields: FieldDecls | None = None
) -> tuple[str, list[TraceProbe]]:
    """trace's C for its probes, and what each probe's C is named."""
    text = "#include <linux/ptrace.h>\n#include <linux/sched.h>\n"
    for include in opts.includes:
        # a header name is pasted into an #include line: it may not end that line or the quotes
        bad = next((i for i, c in enumerate(include) if c in '"<>\\' or not c.isprintable()), None)
        if bad is not None:
            raise ProbeSpecError("-I: not a header name (it would end its #include line)", include, bad)
        if include.startswith((".", "/")):
            text += f'#include "{os.path.abspath(include)}"\n'
        else:
            text += f"#include <{include}>\n"
    if opts.cgroup:
        text += "BPF_CGROUP_ARRAY(__cgroup, 1);\n"
    probes = []
    streq = ""
    streq_index = 0
    mark = _Marks()
    for n, spec in enumerate(specs, 1):
        name = _identifier(f"probe_{spec.display}_{n}")
        probe = TraceProbe(spec, name, f"{name}_events", f"{name}_stacks")
        probes.append(probe)
        point = spec.point
        ctx_param, ctx = _ctx_decl(point)
        signature = ctx_param
        if spec.signature:
            signature += ", " + mark(n - 1, spec.text, spec.signature_position, len(spec.signature), spec.signature)
        if opts.bin_cmp:
            for expr in [*([spec.predicate] if spec.predicate else []), *spec.arguments]:
                _check_needles(spec.text, expr)
        user_args = {a.text.strip() for a in spec.arguments if a.user}
        if spec.predicate is not None and spec.predicate.user:
            user_args |= set(re.findall(r"\barg\d+\b", spec.predicate.text))

        def rewrite(e: str, user_args: set[str] = user_args, point: ProbePoint = point) -> str:
            nonlocal streq, streq_index
            r = StrcmpRewrite.rewrite_expr(e, opts.bin_cmp, point.is_user, user_args, streq, streq_index)
            streq, streq_index = r["streq_functions"], r["probeid"]
            return _trace_alias(point, r["expr"])

        predicate = rewrite(spec.predicate.text) if spec.predicate else "1"
        values = [rewrite(a.text) for a in spec.arguments]
        usdt = ""
        if point.kind == "u":
            usdt, joined = _usdt_reads("\x00".join([predicate, *values]))
            predicate, *values = joined.split("\x00")
        if spec.predicate:
            predicate = mark(n - 1, spec.text, spec.predicate.position, spec.predicate.length, predicate)
        values = [mark(n - 1, spec.text, a.position, a.length, v) for a, v in zip(spec.arguments, values, strict=True)]
        decl = []
        assign = []
        for i, (conv, expr, c_expr) in enumerate(zip(spec.conversions, spec.arguments, values, strict=True)):
            if conv.conv == "s":
                decl.append(f"    char v{i}[{opts.string_size}];\n")
                assign.append("    " + _string_read(spec, expr, c_expr, f"__data.v{i}", fields) + "\n")
            else:
                decl.append(f"    {conv.c_type} v{i};\n")
                assign.append(f"    __data.v{i} = ({conv.c_type})({c_expr});\n")
        stacks = ""
        if opts.kernel_stack or opts.user_stack:
            text += f"BPF_STACK_TRACE({probe.stacks}, 1024);\n"
            if opts.kernel_stack:
                stacks += f"    __data.kernel_stack_id = {probe.stacks}.get_stackid({ctx}, 0);\n"
            if opts.user_stack:
                stacks += f"    __data.user_stack_id = {probe.stacks}.get_stackid({ctx}, BPF_F_USER_STACK);\n"
        text += f"""
struct {name}_data_t {{
    u64 timestamp_ns;
    u32 tgid;
    u32 pid;
    u32 uid;
    int cpu;
    int kernel_stack_id;
    int user_stack_id;
    char comm[TASK_COMM_LEN];
{"".join(decl)}}};
BPF_PERF_OUTPUT({probe.events});

int {name}({signature}) {{
    u64 __pid_tgid = bpf_get_current_pid_tgid();
    u32 __tgid = __pid_tgid >> 32;
    u32 __pid = __pid_tgid;
    u32 __uid = bpf_get_current_uid_gid();
{_filters(opts, point)}{usdt}    if (!({predicate}))
        return 0;
    struct {name}_data_t __data = {{}};
    __data.timestamp_ns = bpf_ktime_get_ns();
    __data.tgid = __tgid;
    __data.pid = __pid;
    __data.uid = __uid;
    __data.cpu = bpf_get_smp_processor_id();
    __data.kernel_stack_id = -1;
    __data.user_stack_id = -1;
    bpf_get_current_comm(&__data.comm, sizeof(__data.comm));
{"".join(assign)}{stacks}    {probe.events}.perf_submit({ctx}, &__data, sizeof(__data));
    return 0;
}}
"""
    return mark.place(streq + text, probes)


# with -B, STRCMP's string is the bytes to compare, as a C initializer: "{0x61, 'b', 99}"
_NEEDLE_ITEM = r"(?:-?(?:0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*|'(?:\\[^'\\]+|[^'\\])')"
# (each blank run sits between two other characters: no two ways to match one, no backtracking blow-up)
_NEEDLE = re.compile(rf"\{{\s*(?:{_NEEDLE_ITEM}\s*(?:,\s*{_NEEDLE_ITEM}\s*)*(?:,\s*)?)?\}}")


def _check_needles(spec: str, expr: Expr) -> None:
    """With -B the rewrite pastes STRCMP's string as C code (an array's initializer): it must be one."""
    for m in re.finditer(r'STRCMP\s*\(\s*"([^"]*)"', expr.written(spec)):
        if not _NEEDLE.fullmatch(m.group(1)):
            where = expr.position + m.start(1)
            raise ProbeSpecError("with -B, STRCMP's string holds the bytes as in C: \"{0x61, 'b', 99}\"", spec, where)


@dataclass(frozen=True)
class ArgdistProbe:
    """One argdist probe in the program: its spec and the names its C declares."""

    spec: ArgdistSpec
    function: str
    table: str
    entry_function: str | None
    placed: tuple[Placed, ...] = ()


def _argdist_rewrite(text: str) -> str:
    text = text.replace("$PID", "(bpf_get_current_pid_tgid() >> 32)")
    text = text.replace("$latency", "(bpf_ktime_get_ns() - *__entry___latency)")
    text = re.sub(r"\$entry\(\s*(\w+)\s*\)", r"(*__entry_\1)", text)
    text = text.replace("$retval", "PT_REGS_RC(ctx)")
    return text


def argdist_program(
    specs: Sequence[ArgdistSpec],
    *,
    string_size: int = 80,
    tgid: int | None = None,
    tid: int | None = None,
    includes: Sequence[str] = (),
) -> tuple[str, list[ArgdistProbe]]:
    """argdist's C for its probes (-H histograms, -C counts), and what each probe's C is named."""
    text = f"#include <linux/ptrace.h>\n#include <linux/sched.h>\nstruct __string_t {{ char s[{string_size}]; }};\n"
    for include in includes:
        text += (
            f'#include "{os.path.abspath(include)}"\n' if include.startswith((".", "/")) else f"#include <{include}>\n"
        )
    probes = []
    streq = ""
    streq_index = 0
    filters = ""
    if tid is not None:
        filters += f"    if (__pid != {tid}) return 0;\n"
    elif tgid is not None:
        filters += f"    if (__tgid != {tgid}) return 0;\n"
    head = (
        "    u64 __pid_tgid = bpf_get_current_pid_tgid();\n"
        "    u32 __pid = __pid_tgid;\n"
        "    u32 __tgid = __pid_tgid >> 32;\n"
    )
    mark = _Marks()
    for n, spec in enumerate(specs):
        point = spec.point
        name = _identifier(f"{point.function}_probe{n}")
        table = _identifier(f"{point.function}_hash{n}")
        ctx_param, ctx = _ctx_decl(point)
        signature = mark(n, spec.text, spec.signature_position, len(spec.signature), spec.signature)
        all_text = " ".join([e.text for e in spec.exprs] + ([spec.filter.text] if spec.filter else []))
        entry_names = sorted(set(re.findall(r"\$entry\(\s*(\w+)\s*\)", all_text)))
        if "$latency" in all_text:
            entry_names.append("__latency")
        types = {p.name: p.type for p in spec.params} | {"__latency": "u64"}
        entry_fn = None
        prefix = ""
        if point.kind == "r" and entry_names:
            entry_fn = f"{name}_entry"
            collect = ""
            for pname in entry_names:
                text += f"BPF_HASH({table}_{pname}, u32, {types[pname]});\n"
                value = "bpf_ktime_get_ns()" if pname == "__latency" else pname
                collect += (
                    f"    {types[pname]} __v_{pname} = {value};\n    {table}_{pname}.update(&__pid, &__v_{pname});\n"
                )
                prefix += f"    {types[pname]} *__entry_{pname} = {table}_{pname}.lookup(&__pid);\n"
                prefix += f"    if (__entry_{pname} == 0) return 0;\n"
            sig = f"struct pt_regs *ctx, {signature}" if spec.signature else "struct pt_regs *ctx"
            text += f"\nint {entry_fn}({sig}) {{\n{head}{filters}{collect}    return 0;\n}}\n"
        user_params = {p.name for p in spec.params if "__user" in p.type.split()}

        def rewrite(e: str, user_params: set[str] = user_params, point: ProbePoint = point) -> str:
            nonlocal streq, streq_index
            r = StrcmpRewrite.rewrite_expr(e, False, point.is_user, user_params, streq, streq_index)
            streq, streq_index = r["streq_functions"], r["probeid"]
            return _argdist_rewrite(r["expr"])

        exprs = [rewrite(e.text) for e in spec.exprs]
        filt = rewrite(spec.filter.text) if spec.filter else "1"
        usdt = ""
        if point.kind == "u":
            usdt, joined = _usdt_reads("\x00".join([filt, *exprs]))
            filt, *exprs = joined.split("\x00")
        if spec.filter:
            filt = mark(n, spec.text, spec.filter.position, spec.filter.length, filt)
        values = [mark(n, spec.text, e.position, e.length, c) for e, c in zip(spec.exprs, exprs, strict=True)]
        # the values are parenthesized where they are assigned, as everywhere else: an expression stays one
        if spec.kind == "hist":
            text += f"BPF_HISTOGRAM({table}, {spec.types[0]});\n"
            key = f"    {spec.types[0]} __key = ({values[0]});\n"
            update = f"    {table}.atomic_increment(bpf_log2l(__key));\n"
        else:
            fields = "".join(
                f"    struct __string_t v{i};\n" if _is_string(t) else f"    {t} v{i};\n"
                for i, t in enumerate(spec.types)
            )
            text += f"struct {table}_key_t {{\n{fields}}};\nBPF_HASH({table}, struct {table}_key_t, u64);\n"
            key = f"    struct {table}_key_t __key = {{}};\n"
            for i, (t, e, v) in enumerate(zip(spec.types, exprs, values, strict=True)):
                if _is_string(t):
                    space = "user" if point.is_user or e.strip() in user_params else "kernel"
                    key += f"    bpf_probe_read_{space}_str(&__key.v{i}.s, sizeof(__key.v{i}.s), (void *)({v}));\n"
                else:
                    key += f"    __key.v{i} = ({v});\n"
            update = f"    {table}.atomic_increment(__key);\n"
        sig = ctx_param + (f", {signature}" if spec.signature and point.kind == "p" else "")
        text += f"\nint {name}({sig}) {{\n{head}{filters}{prefix}{usdt}{key}    if (!({filt}))\n        return 0;\n"
        text += f"{update}    return 0;\n}}\n"
        del ctx
        probes.append(ArgdistProbe(spec, name, table, entry_fn))
    return mark.place(streq + text, probes)


def _is_string(c_type: str) -> bool:
    return c_type.replace(" ", "") == "char*"


def count_program(
    pattern: PatternSpec,
    targets: Sequence[str],
    *,
    tgid: int | None = None,
    cpu: int | None = None,
    kernel_stack: bool = False,
    user_stack: bool = False,
    per_pid: bool = False,
    ctx_type: str = "struct pt_regs *ctx",
) -> str:
    """The C of funccount (no stacks: a counter per target) or stackcount (stacks: counts per stack),
    one function per target, named ``trace_count_N``."""
    stacks = kernel_stack or user_stack
    filters = ""
    if tgid is not None:
        filters += f"    if ((bpf_get_current_pid_tgid() >> 32) != {tgid}) return 0;\n"
    if cpu is not None:
        filters += f"    if (bpf_get_smp_processor_id() != {cpu}) return 0;\n"
    if stacks:
        text = """#include <linux/ptrace.h>
#include <linux/sched.h>
struct key_t {
    u32 tgid;
    int kernel_stack_id;
    int user_stack_id;
    char name[TASK_COMM_LEN];
};
BPF_HASH(counts, struct key_t);
BPF_STACK_TRACE(stack_traces, 1024);
"""
    else:
        text = f"#include <linux/ptrace.h>\nBPF_ARRAY(counts, u64, {max(1, len(targets))});\n"
    for n, _target in enumerate(targets):
        if stacks:
            body = "    struct key_t key = {};\n"
            if per_pid:
                body += "    key.tgid = bpf_get_current_pid_tgid() >> 32;\n"
                body += "    bpf_get_current_comm(&key.name, sizeof(key.name));\n"
            else:
                body += "    key.tgid = 0xffffffff;\n"
            ctx = ctx_type.rsplit("*", 1)[-1].strip()
            kernel = f"stack_traces.get_stackid({ctx}, 0)" if kernel_stack else "-1"
            user = f"stack_traces.get_stackid({ctx}, BPF_F_USER_STACK)" if user_stack else "-1"
            body += f"    key.kernel_stack_id = {kernel};\n    key.user_stack_id = {user};\n"
            body += "    counts.atomic_increment(key);\n"
        else:
            body = f"    int loc = {n};\n    counts.atomic_increment(loc);\n"
        text += f"\nint trace_count_{n}({ctx_type}) {{\n{filters}{body}    return 0;\n}}\n"
    return text
