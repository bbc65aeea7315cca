#!/usr/bin/env python3
"""shmsnoop: trace the shm*() syscalls (shmget, shmat, shmdt, shmctl), with their arguments and results.

Uses the syscalls' tracepoints (sys_enter_shm*/sys_exit_shm*) instead of bcc's kprobes and
kretprobes on the syscall functions: the same calls, arguments and return values.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common, proc

__all__ = ["bpf_text", "build_parser", "flags_text", "main"]

EXAMPLES = """examples:
    rbcc tool shmsnoop           # trace all shm*() syscalls
    rbcc tool shmsnoop -T        # include timestamps
    rbcc tool shmsnoop -p 181    # only trace PID 181
    rbcc tool shmsnoop -t 123    # only trace TID 123
    rbcc tool shmsnoop -d 10     # trace for 10 seconds only
    rbcc tool shmsnoop -n main   # only print process names containing "main"
"""

SHMGET, SHMAT, SHMDT, SHMCTL = range(4)
NAMES = {SHMGET: "SHMGET", SHMAT: "SHMAT", SHMDT: "SHMDT", SHMCTL: "SHMCTL"}

BPF_TEXT = r"""
#include <linux/sched.h>

struct call_t {
    u64 id;
    u64 ts;
    int sys;
    u64 key;
    u64 size;
    u64 shmflg;
    u64 shmid;
    u64 cmd;
    u64 buf;
    u64 shmaddr;
    u64 ret;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(calls, u64, struct call_t, 10240);
BPF_PERF_OUTPUT(events);

static __always_inline int enter(struct call_t *c)
{
TASK_IDS
    if (SKIP)
        return 0;
    c->id = id;
    calls.update(&id, c);
    return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
    u64 id = bpf_get_current_pid_tgid();
    struct call_t *c = calls.lookup(&id);
    if (c == 0)
        return 0;
    c->ts = bpf_ktime_get_ns() / 1000;
    c->ret = ret;
    bpf_get_current_comm(&c->comm, sizeof(c->comm));
    events.perf_submit(ctx, c, sizeof(*c));
    calls.delete(&id);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_shmget) {
    struct call_t c = {.sys = 0, .key = args->key, .size = args->size, .shmflg = args->shmflg};
    return enter(&c);
}

TRACEPOINT_PROBE(syscalls, sys_enter_shmat) {
    struct call_t c = {.sys = 1, .shmid = args->shmid, .shmaddr = (u64)args->shmaddr, .shmflg = args->shmflg};
    return enter(&c);
}

TRACEPOINT_PROBE(syscalls, sys_enter_shmdt) {
    struct call_t c = {.sys = 2, .shmaddr = (u64)args->shmaddr};
    return enter(&c);
}

TRACEPOINT_PROBE(syscalls, sys_enter_shmctl) {
    struct call_t c = {.sys = 3, .shmid = args->shmid, .cmd = args->cmd, .buf = (u64)args->buf};
    return enter(&c);
}

TRACEPOINT_PROBE(syscalls, sys_exit_shmget) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_shmat) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_shmdt) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_exit_shmctl) { return leave(args, args->ret); }
"""

# (name, bit) of the flags bcc decodes (include/uapi/linux/shm.h, ipc.h)
SHMGET_FLAGS = (
    ("IPC_CREAT", 0o1000),
    ("IPC_EXCL", 0o2000),
    ("SHM_HUGETLB", 0o4000),
    ("SHM_HUGE_2MB", 21 << 26),
    ("SHM_HUGE_1GB", 30 << 26),
    ("SHM_NORESERVE", 0o10000),
    ("SHM_EXEC", 0o100000),
)
SHMAT_FLAGS = (
    ("SHM_RDONLY", 0o10000),
    ("SHM_RND", 0o20000),
    ("SHM_REMAP", 0o40000),
    ("SHM_EXEC", 0o100000),
)


def flags_text(value: int, flags: Sequence[tuple[str, int]]) -> str:
    """bcc's text of a flags argument: hex, then the names of its flags and the rest in octal (the
    permission bits of shmget)."""
    text = "0x%x" % value
    if not value:
        return text
    names = []
    rest = value
    for name, bit in flags:
        if value & bit:
            names.append(name)
            rest &= ~bit
    if rest or not names:
        names.append("0%o" % rest)
    return "%s (%s)" % (text, "|".join(names))


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("shmsnoop", "Trace shm*() syscalls", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-t", "--tid", type=int, help="trace this TID only")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    skip = proc.skip_condition(pid=args.pid, tid=args.tid)
    return BPF_TEXT.replace("TASK_IDS", proc.TASK_IDS).replace("SKIP", skip)


def args_text(e: Any) -> str:
    """bcc's ARGs column for one call."""
    sys_ = e.sys
    if sys_ == SHMGET:
        return "key: 0x%x, size: %d, shmflg: %s" % (e.key, e.size, flags_text(e.shmflg, SHMGET_FLAGS))
    if sys_ == SHMAT:
        return "shmid: 0x%x, shmaddr: 0x%x, shmflg: %s" % (e.shmid, e.shmaddr, flags_text(e.shmflg, SHMAT_FLAGS))
    if sys_ == SHMDT:
        return "shmaddr: 0x%x" % e.shmaddr
    return "shmid: 0x%x, cmd: %d, buf: 0x%x" % (e.shmid, e.cmd, e.buf)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("shmsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        clock = proc.RelativeTime(args.timestamp)
        print(
            clock.header() + "%-6s %-16s %6s %16s ARGs" % ("TID" if args.tid else "PID", "COMM", "SYS", "RET"),
            flush=True,
        )
        name = args.name.encode() if args.name else None

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            stamp = clock.column(e.ts)  # the first event is the time zero, even one -n leaves out
            if name is not None and name not in e.comm:
                return
            who = e.id & 0xFFFFFFFF if args.tid else e.id >> 32
            comm = e.comm.decode("utf-8", "replace")
            print(stamp + "%-6d %-16s %6s %16x %s" % (who, comm, NAMES.get(e.sys, "N/A"), e.ret, args_text(e)))
            sys.stdout.flush()

        b["events"].open_perf_buffer(on_event, page_cnt=64)
        common.poll_events_for(b, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
