"""Smaller constructs of bcc's C dialect on the real kernel: map values of untagged struct types,
bpf_trace_printk's format checked when the program compiles, the license (given in the text or by cflags)
against the GPL-only helpers the program calls."""

from __future__ import annotations

import ctypes
import os
import time

import pytest
from _bpfutil import poll_until, target_cflags

from rbcc import BPF, CompileError

pytestmark = pytest.mark.needs_root

ANONYMOUS_VALUES = r"""
BPF_HASH(h, u32, struct { u64 calls; u64 size; struct { u32 x; u16 y; } inner; });
BPF_ARRAY(arr, struct { int n; char tag[4]; }, 2);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 7;
    typeof(h.leaf) zero = {};
    typeof(h.leaf) *v = h.lookup_or_try_init(&k, &zero);
    if (v) {
        v->calls += 1;
        v->size = sizeof(h.leaf) + sizeof(h.key);
        v->inner.x = 99;
        v->inner.y = 5;
    }
    int i = 1;
    struct { int n; char tag[4]; } *e = arr.lookup(&i);
    if (e) {
        e->n = 42;
        e->tag[0] = 'o';
        e->tag[1] = 'k';
    }
    return 0;
}
"""


def test_untagged_struct_values_are_written_and_read_back_by_field() -> None:
    with BPF(text=ANONYMOUS_VALUES, cflags=target_cflags()) as b:
        for _ in range(3):
            os.getppid()
        v = b["h"][ctypes.c_uint(7)]
        assert (v.calls, v.size, v.inner.x, v.inner.y) == (3, 24 + 4, 99, 5)
        assert [name for name, *_ in b["h"].Leaf._fields_] == ["calls", "size", "inner"]
        e = b["arr"][1]
        assert (e.n, e.tag) == (42, b"ok")


def printk_program(call: str) -> str:
    return f"""
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    {call};
    return 0;
}}
"""


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (r'bpf_trace_printk("%d %f\n", 1, 2)', r'"%f" is not a conversion the kernel prints; it takes %d %i'),
        (r'bpf_trace_printk("%.2d\n", 1)', r'"%\." is not a conversion'),
        (r'bpf_trace_printk("%d %d %d %d\n", 1, 2, 3, 4)', r"at most 3 arguments after its format .*, not 4"),
        (r'bpf_trace_printk("%d %d %d %d\n", 1, 2, 3)', r"more than 3 conversions"),
        (r'bpf_trace_printk("%d %s\n", 1)', r"2 conversions but the call passes 1 argument"),
    ],
)
def test_a_format_the_kernel_would_refuse_is_a_compile_error_at_its_line(call: str, complaint: str) -> None:
    with pytest.raises(CompileError, match=r"<bpf text>:5: error: bpf_trace_printk.*" + complaint):
        BPF(text=printk_program(call), cflags=target_cflags())


CONVERSIONS = [
    (r'bpf_trace_printk("rbcc-ints %d %lu %llx\n", -42, 7UL, 0xabcULL)', b"rbcc-ints -42 7 abc"),
    (r'bpf_trace_printk("rbcc-text %s %c %5x%%\n", "str", 65, 255)', b"rbcc-text str A    ff%"),
    (r'bpf_trace_printk("rbcc-ptr %p|\n", 0)', b"rbcc-ptr 0000000000000000|"),
    # more arguments than the format uses are fine
    (r'bpf_trace_printk("rbcc-plain\n", 1)', b"rbcc-plain"),
]


def test_the_conversions_bcc_programs_use_print() -> None:
    me = os.getpid()
    calls = ";\n    ".join(call for call, _ in CONVERSIONS)
    want = {line for _, line in CONVERSIONS}
    with BPF(text=printk_program(calls), cflags=target_cflags()) as b:
        seen: set[bytes] = set()
        deadline = time.monotonic() + 5
        while not want <= seen and time.monotonic() < deadline:
            os.getppid()  # trace_pipe is the machine's: another reader may take a line, so print again
            for _ in range(8):
                task, pid, cpu, flags, ts, msg = b.trace_fields(nonblocking=True)
                if msg is None:
                    break
                if pid == me:
                    seen.add(msg)
    assert want <= seen, seen


# reads a kernel pointer (rbcc's probe read), prints, and sends an event: three GPL-only helpers
GPL_HELPERS = r"""
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 ppid = t->real_parent->tgid;
    bpf_trace_printk("ppid %d\\n", ppid);
    events.perf_submit(args, &ppid, sizeof(ppid));
    return 0;
}
"""


@pytest.mark.parametrize("how", ["cflags", "define"])
def test_a_gpl_only_helper_under_another_license_is_a_compile_error_naming_both(how: str) -> None:
    text, cflags = GPL_HELPERS, ["-DBPF_LICENSE=Proprietary"]
    if how == "define":
        text, cflags = "#define BPF_LICENSE Proprietary" + GPL_HELPERS, []
    with pytest.raises(CompileError) as raised:
        BPF(text=text, cflags=cflags)
    lines = str(raised.value).splitlines()
    assert lines[0].startswith("<bpf text>:4: error: bpf_get_current_task() is a GPL-only helper, and the")
    assert 'license is "Proprietary" (BPF_LICENSE)' in lines[0]
    assert lines[1].startswith("<bpf text>:5: note: bpf_probe_read_kernel() is GPL-only too; rbcc reads kernel")
    assert lines[2] == "<bpf text>:6: note: bpf_trace_printk() is GPL-only too"
    assert lines[3] == "<bpf text>:7: note: bpf_perf_event_output() is GPL-only too; perf_submit() calls it"


def test_a_license_from_cflags_is_the_programs() -> None:
    with BPF(text=GPL_HELPERS, cflags=["-DBPF_LICENSE=Dual BSD/GPL"]) as b:
        assert b.num_open_tracepoints() == 1
    # a program calling no GPL-only helper loads under any license
    counting = "BPF_ARRAY(n, u64, 1);\nint count(struct __sk_buff *skb) { n.increment(0); return 0; }\n"
    with BPF(text=counting, cflags=["-DBPF_LICENSE=Proprietary"]) as b:
        b.load_func("count", BPF.SOCKET_FILTER)


# Map methods in the program's own macros, which bcc refuses: the map named in the body, passed in as
# a parameter, and a perf buffer's submit whose record type Python decodes.
MACROS = r"""
struct ev_t { u32 pid; u32 n; };
BPF_HASH(counts, u32, u64);
BPF_PERF_OUTPUT(events);
#define BUMP(k) counts.increment(k)
#define BUMP_BY(m, k, n) m.increment(k, n)
#define SEND(c, e) events.perf_submit(c, &e, sizeof(e))
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    BUMP(pid);
    BUMP_BY(counts, 0, 10);
    struct ev_t e = {.pid = pid, .n = 7};
    SEND(args, e);
    return 0;
}
"""


def test_map_methods_in_the_programs_macros_run() -> None:
    with BPF(text=MACROS, cflags=target_cflags()) as b:
        seen: list[tuple[int, int]] = []

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            seen.append((e.pid, e.n))

        b["events"].open_perf_buffer(on_event)
        for _ in range(3):
            os.getppid()
        assert poll_until(b.perf_buffer_poll, lambda: len(seen) >= 3)
        counts = {k.value: v.value for k, v in b["counts"].items()}
    assert counts == {os.getpid(): 3, 0: 30}
    assert seen == [(os.getpid(), 7)] * 3
