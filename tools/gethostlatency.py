#!/usr/bin/env python3
"""gethostlatency: show the latency of getaddrinfo/gethostbyname[2] calls, with the host looked up."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool gethostlatency           # time getaddrinfo/gethostbyname[2] calls
    rbcc tool gethostlatency -p 181    # only trace PID 181
"""

FUNCTIONS = ("getaddrinfo", "gethostbyname", "gethostbyname2")

# uprobes on libc's resolvers note the host and the time per thread; uretprobes report the latency.
BPF_TEXT = r"""
#include <linux/sched.h>

struct val_t {
    u32 pid;
    u64 ts;
    char comm[TASK_COMM_LEN];
    char host[80];
};

struct data_t {
    u32 pid;
    u64 delta;
    char comm[TASK_COMM_LEN];
    char host[80];
};

BPF_HASH(start, u32, struct val_t);
BPF_PERF_OUTPUT(events);

int do_entry(struct pt_regs *ctx) {
    const char *host = (const char *)PT_REGS_PARM1(ctx);
    if (!host)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct val_t val = {.pid = pid_tgid >> 32};
    bpf_get_current_comm(&val.comm, sizeof(val.comm));
    bpf_probe_read_user_str(&val.host, sizeof(val.host), host);
    val.ts = bpf_ktime_get_ns();
    start.update(&tid, &val);
    return 0;
}

int do_return(struct pt_regs *ctx) {
    u64 now = bpf_ktime_get_ns();
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct val_t *valp = start.lookup(&tid);
    if (!valp)
        return 0;
    struct data_t data = {.pid = valp->pid, .delta = now - valp->ts};
    __builtin_memcpy(&data.comm, valp->comm, sizeof(data.comm));
    __builtin_memcpy(&data.host, valp->host, sizeof(data.host));
    start.delete(&tid);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("gethostlatency", "Show latency for getaddrinfo/gethostbyname[2] calls", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, default=-1, help="trace this PID only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); -p chooses the process the uprobes attach to, not the C."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("gethostlatency", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    for fn in FUNCTIONS:
        b.attach_uprobe(name="c", sym=fn, fn_name="do_entry", pid=args.pid)
        b.attach_uretprobe(name="c", sym=fn, fn_name="do_return", pid=args.pid)
    print("%-9s %-7s %-16s %10s %s" % ("TIME", "PID", "COMM", "LATms", "HOST"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        comm = e.comm.decode("utf-8", "replace")
        host = e.host.decode("utf-8", "replace")
        print("%-9s %-7d %-16s %10.2f %s" % (common.strftime_now(), e.pid, comm, e.delta / 1e6, host), flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
