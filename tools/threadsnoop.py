#!/usr/bin/env python3
"""threadsnoop: list new thread creation (pthread_create), with the thread's start function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common
from rbcc.errors import AttachError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool threadsnoop         # list new threads, with their start functions
"""

# A uprobe on pthread_create: its third argument is the start routine, named in user space.
BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u64 ts;
    u32 pid;
    u64 start;
    char comm[TASK_COMM_LEN];
};

BPF_PERF_OUTPUT(events);

int do_entry(struct pt_regs *ctx) {
    struct data_t data = {};
    data.ts = bpf_ktime_get_ns();
    data.pid = bpf_get_current_pid_tgid() >> 32;
    data.start = PT_REGS_PARM3(ctx);
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""

# glibc 2.34 moved pthread into libc (libpthread is left as a stub): try the old home first, as bcc
LIBRARIES = ("pthread", "c")


def build_parser() -> argparse.ArgumentParser:
    return common.parser("threadsnoop", "List new thread creation", EXAMPLES)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); threadsnoop has no options that change it."""
    return BPF_TEXT


def attach(b: BPF) -> None:
    """The uprobe on pthread_create, in the first library of LIBRARIES that has it."""
    for lib in LIBRARIES:
        try:
            b.attach_uprobe(name=lib, sym="pthread_create", fn_name="do_entry")
            return
        except AttachError:
            if lib == LIBRARIES[-1]:
                raise


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("threadsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    attach(b)
    print("%-10s %-7s %-16s %s" % ("TIME(ms)", "PID", "COMM", "FUNC"), flush=True)
    start_ts = 0

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal start_ts
        e = b["events"].event(data)
        if not start_ts:
            start_ts = e.ts
        func = b.sym(e.start, e.pid).decode("utf-8", "replace")
        if func == "[unknown]":
            func = hex(e.start)
        comm = e.comm.decode("utf-8", "replace")
        print("%-10d %-7d %-16s %s" % ((e.ts - start_ts) // 1000000, e.pid, comm, func), flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
