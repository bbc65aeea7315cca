"""Implicit kernel-pointer dereferences (`task->real_parent->tgid`), rewritten into probe reads, on the real kernel."""

from __future__ import annotations

import os
import subprocess

import pytest
from _bpfutil import poll_until, target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root

PARENT = r"""
#include <linux/sched.h>
BPF_HASH(parents, u32, u32);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 ppid = task->real_parent->tgid;
    parents.update(&pid, &ppid);
    return 0;
}
"""


def test_task_real_parent_tgid_is_our_ppid() -> None:
    with BPF(text=PARENT, cflags=target_cflags()) as b:
        ppid = os.getppid()
        assert [(k.value, v.value) for k, v in b["parents"].items()] == [(os.getpid(), ppid)]
    assert ppid > 0


EXEC = r"""
#include <linux/sched.h>
struct exec_t { u32 pid; u32 ppid; char comm[TASK_COMM_LEN]; };
BPF_PERF_OUTPUT(execs);
RAW_TRACEPOINT_PROBE(sched_process_exec) {
    struct task_struct *p = (struct task_struct *)ctx->args[0];
    struct exec_t e = {};
    e.ppid = p->real_parent->tgid;
    if (e.ppid != TARGET)
        return 0;
    e.pid = p->tgid;
    bpf_probe_read_kernel_str(&e.comm, sizeof(e.comm), p->comm);
    execs.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
"""


def test_raw_tracepoint_reads_task_fields_of_an_exec() -> None:
    with BPF(text=EXEC, cflags=target_cflags()) as b:
        seen: list[tuple[int, int, bytes]] = []

        def on_exec(cpu: int, data: int, size: int) -> None:
            e = b["execs"].event(data)
            seen.append((e.pid, e.ppid, e.comm))

        b["execs"].open_perf_buffer(on_exec)
        child = subprocess.run(["/bin/true"], check=True)
        assert child.returncode == 0
        proc = subprocess.Popen(["/bin/true"])
        proc.wait()
        assert poll_until(b.perf_buffer_poll, lambda: any(pid == proc.pid for pid, _, _ in seen))
        b.perf_buffer_poll(100)
    assert len(seen) == 2
    assert (proc.pid, os.getpid(), b"true") in seen
    assert all(ppid == os.getpid() and comm == b"true" for _, ppid, comm in seen)


HELPERS = r"""
#include <linux/sched.h>
struct who_t { u32 pid; u32 ppid; };
BPF_HASH(seen, u32, struct who_t);
// a kernel struct behind a helper's pointer parameter: read with probe reads like in the probe itself
static u32 parent_of(struct task_struct *t) {
    return t->real_parent->tgid;
}
// a struct passed by value: only possible because helpers are inlined
static void remember(struct who_t w) {
    seen.update(&w.pid, &w);
}
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct who_t w = {};
    w.pid = bpf_get_current_pid_tgid() >> 32;
    if (w.pid != TARGET)
        return 0;
    w.ppid = parent_of((struct task_struct *)bpf_get_current_task());
    remember(w);
    return 0;
}
"""


def test_static_helpers_read_kernel_structs_and_take_structs_by_value() -> None:
    with BPF(text=HELPERS, cflags=target_cflags()) as b:
        ppid = os.getppid()
        got = {k.value: (v.pid, v.ppid) for k, v in b["seen"].items()}
    assert got == {os.getpid(): (os.getpid(), ppid)}


EXEC_FILENAME = r"""
struct exec_t { u32 pid; char filename[64]; };
BPF_PERF_OUTPUT(execs);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (task->real_parent->tgid != TARGET)
        return 0;
    struct exec_t e = {};
    e.pid = args->pid;
    TP_DATA_LOC_READ_STR(e.filename, filename, sizeof(e.filename));
    execs.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def test_tp_data_loc_read_str_reads_a_data_loc_field() -> None:
    true = "/bin/true"
    with BPF(text=EXEC_FILENAME, cflags=target_cflags()) as b:
        seen: list[tuple[int, bytes]] = []

        def on_exec(cpu: int, data: int, size: int) -> None:
            e = b["execs"].event(data)
            seen.append((e.pid, e.filename))

        b["execs"].open_perf_buffer(on_exec)
        child = subprocess.run([true], check=True)
        assert child.returncode == 0
        assert poll_until(b.perf_buffer_poll, lambda: len(seen) >= 1)
    assert [f for _, f in seen] == [true.encode()]
