#!/usr/bin/env python3
"""runqslower: trace high run queue latency, one line per wait longer than a threshold.

The wait from a task's wakeup (or its preemption while still runnable) to its next run, from the
sched_wakeup, sched_wakeup_new and sched_switch raw tracepoints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common, sched
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool runqslower         # trace run queue latency higher than 10000 us (default)
    rbcc tool runqslower 1000    # trace run queue latency higher than 1000 us
    rbcc tool runqslower -p 123  # trace pid 123
    rbcc tool runqslower -t 123  # trace tid 123 (use for threads only)
    rbcc tool runqslower -P      # also show previous task comm and TID
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u32 pid;
    u32 prev_pid;
    char task[TASK_COMM_LEN];
    char prev_task[TASK_COMM_LEN];
    u64 delta_us;
};

BPF_PERF_OUTPUT(events);

RUNQ_C

int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    struct task_struct *prev = (struct task_struct *)ctx->args[1];
    struct task_struct *next = (struct task_struct *)ctx->args[2];
    enqueue_preempted(prev);

    u32 pid = next->pid;
    u64 *tsp = start.lookup(&pid);
    if (tsp == 0)
        return 0;  // not stamped: filtered out, or woken before tracing began
    u64 delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
    start.delete(&pid);
    if (FILTER_US)
        return 0;
    struct data_t data = {};
    data.pid = pid;
    data.prev_pid = prev->pid;
    data.delta_us = delta_us;
    bpf_probe_read_kernel_str(&data.task, sizeof(data.task), next->comm);
    bpf_probe_read_kernel_str(&data.prev_task, sizeof(data.prev_task), prev->comm);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("runqslower", "Trace high run queue latency", EXAMPLES)
    p.add_argument(
        "min_us",
        nargs="?",
        type=int,
        default=10000,
        help="minimum run queue latency to trace, in us (default 10000)",
    )
    p.add_argument("-P", "--previous", action="store_true", help="also show previous task name and TID")
    threads = p.add_mutually_exclusive_group()
    threads.add_argument("-p", "--pid", metavar="PID", type=int, help="trace this PID only")
    threads.add_argument("-t", "--tid", metavar="TID", type=int, help="trace this TID only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("RUNQ_C", sched.runq_c("FILTER_PID || FILTER_TGID || pid == 0"))
        .replace("FILTER_US", f"delta_us <= {args.min_us}" if args.min_us else "0")
        .replace("FILTER_PID", common.pid_condition("pid", args.tid))
        .replace("FILTER_TGID", common.pid_condition("tgid", args.pid))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("runqslower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), sched.RUNQ)
    if b is None:
        return 0
    with b:
        print("Tracing run queue latency higher than %d us" % args.min_us)
        if args.previous:
            print(
                "%-8s %-16s %-6s %14s %-16s %-6s" % ("TIME", "COMM", "TID", "LAT(us)", "PREV COMM", "PREV TID"),
                flush=True,
            )
        else:
            print("%-8s %-16s %-6s %14s" % ("TIME", "COMM", "TID", "LAT(us)"), flush=True)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            line = b"%-8s %-16s %-6d %14d" % (time.strftime("%H:%M:%S").encode(), e.task, e.pid, e.delta_us)
            if args.previous:
                line += b" %-16s %-6d" % (e.prev_task, e.prev_pid)
            printb(line)

        b["events"].open_perf_buffer(on_event, page_cnt=64)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
