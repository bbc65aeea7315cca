#!/usr/bin/env python3
"""runqlat: summarize run queue (scheduler) latency as a histogram.

The time from a task's wakeup (or its preemption while still runnable) to its next run on a CPU, from
the sched_wakeup, sched_wakeup_new and sched_switch raw tracepoints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, pictures, sched
from rbcc.export import Attach, Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool runqlat            # summarize run queue latency as a histogram
    rbcc tool runqlat 1 10       # print 1 second summaries, 10 times
    rbcc tool runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
    rbcc tool runqlat -P         # show each PID separately
    rbcc tool runqlat -p 185     # trace PID 185 only
    rbcc tool runqlat --heatmap runq.png 30 1   # 30 seconds of latency as a heatmap
"""

# A wakeup stamps the woken thread; so does a switch away from a thread that is still runnable (it was
# preempted, so it waits in the queue from now on). The switch to a stamped thread ends its wait.
BPF_TEXT = r"""
#include <linux/sched.h>

typedef struct pid_key {
    u64 id;  // not u32: padding would be part of the key, and is not always zeroed
    u64 slot;
} pid_key_t;

STORAGE

static __always_inline int skip(u32 tgid, u32 pid)
{
    return FILTER || pid == 0;
}

RUNQ_C

int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    struct task_struct *prev = (struct task_struct *)ctx->args[1];
    struct task_struct *task = (struct task_struct *)ctx->args[2];
    enqueue_preempted(prev);

    u32 tgid = task->tgid, pid = task->pid;
    if (skip(tgid, pid))
        return 0;
    u64 *tsp = start.lookup(&pid);
    if (tsp == 0)
        return 0;  // its wakeup came before tracing began
    u64 delta = bpf_ktime_get_ns() - *tsp;
    FACTOR
    STORE
    start.delete(&pid);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("runqlat", "Summarize run queue (scheduler) latency as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    p.add_argument("--pidnss", action="store_true", help="print a histogram per PID namespace")
    p.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    p.add_argument("-p", "--pid", type=sched.pid_arg, help="trace this PID only")
    sched.add_interval_count(p)
    pictures.add_heatmap(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    factor, _ = sched.units(args.milliseconds)
    storage, store, _ = sched.hist_storage(args)
    if args.pidnss:
        storage += sched.PIDNS_C  # defined with the map, before the probes that use it
    return (
        BPF_TEXT.replace("STORAGE", storage)
        .replace("STORE", store)
        .replace("FACTOR", factor)
        .replace("RUNQ_C", sched.runq_c("skip(tgid, pid)"))
        .replace("FILTER", common.pid_condition("tgid", args.pid))
    )


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool runqlat``: run queue latency in seconds; per process (-P), thread (-L) or PID
    namespace (--pidnss)."""
    section = sched.hist_storage(args)[2]
    labels = (Label(section, "id"),) if section else ()
    unit = sched.units(args.milliseconds)[1]
    return Program(
        "runqlat",
        bpf_text(args),
        attach=tuple(Attach("raw_tracepoint", tp, fn) for tp, fn in sched.RUNQ),
        metrics=(Histogram("dist", "rbcc_runqlat_seconds", "Run queue (scheduler) latency", labels, unit=unit),),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pictures.check_heatmap(parser, args)
    return common.guard("runqlat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), sched.RUNQ)
    if b is None:
        return 0
    with b:
        print("Tracing run queue latency... Hit Ctrl-C to end.", flush=True)
        label = sched.units(args.milliseconds)[1]
        section = sched.hist_storage(args)[2]
        with pictures.heatmap_intervals(args, "runqlat", b["dist"], label, "Run queue latency") as ticks:
            sched.print_intervals(args, lambda: sched.print_dist(b, label, section), ticks=ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
