#!/usr/bin/env python3
"""cpudist: summarize on- and off-CPU time per task as a histogram.

Each stretch a thread runs on a CPU (or, with -O, stays off it) between two context switches, from
the sched_switch raw tracepoint (bcc hooks finish_task_switch with a kprobe: the same switch). CPU
idle time (PID 0) is left out unless -I.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sched
from rbcc.export import Attach, Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool cpudist              # summarize on-CPU time as a histogram
    rbcc tool cpudist -O           # summarize off-CPU time as a histogram
    rbcc tool cpudist 1 10         # print 1 second summaries, 10 times
    rbcc tool cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
    rbcc tool cpudist -P           # show each PID separately
    rbcc tool cpudist -p 185       # trace PID 185 only
    rbcc tool cpudist -I           # include CPU idle time
    rbcc tool cpudist -e           # show extension summary (average/total/count)
"""

# On-CPU: a switch ends prev's run and starts next's. Off-CPU: it starts prev's wait and ends next's.
BPF_TEXT = r"""
#include <linux/sched.h>

typedef struct entry_key {
    u32 pid;
    u32 cpu;
} entry_key_t;

typedef struct pid_key {
    u64 id;
    u64 slot;
} pid_key_t;

typedef struct ext_val {
    u64 total;
    u64 count;
} ext_val_t;

BPF_HASH(start, entry_key_t, u64, 65536);
STORAGE

// Threads are keyed by TID alone, as one may switch out on one CPU and back in on another (bcc's
// key has the CPU too, which loses those off-CPU stretches); the idle threads all have TID 0, one per CPU.
static __always_inline entry_key_t entry_of(u32 pid, u32 cpu)
{
    entry_key_t key = {.pid = pid, .cpu = pid == 0 ? cpu : 0};
    return key;
}

static __always_inline void store_start(u32 tgid, u32 pid, u32 cpu, u64 ts)
{
    if (PID_FILTER || IDLE_FILTER)
        return;
    entry_key_t key = entry_of(pid, cpu);
    start.update(&key, &ts);
}

static __always_inline void update_hist(u32 tgid, u32 pid, u32 cpu, u64 ts)
{
    if (PID_FILTER || IDLE_FILTER)
        return;
    entry_key_t entry = entry_of(pid, cpu);
    u64 *tsp = start.lookup(&entry);
    if (tsp == 0 || ts < *tsp)
        return;  // began before tracing did (or clocks disagree across CPUs)
    u64 delta = ts - *tsp;
    start.delete(&entry);
    FACTOR
    STORE
}

int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    struct task_struct *prev = (struct task_struct *)ctx->args[1];
    struct task_struct *next = (struct task_struct *)ctx->args[2];
    u64 ts = bpf_ktime_get_ns();
    u32 cpu = bpf_get_smp_processor_id();
    u32 prev_pid = prev->pid, prev_tgid = prev->tgid;
    u32 next_pid = next->pid, next_tgid = next->tgid;
    ENDS(prev_tgid, prev_pid, cpu, ts);
    BEGINS(next_tgid, next_pid, cpu, ts);
    return 0;
}
"""

EXTENSION_STORAGE = "BPF_ARRAY(extension, ext_val_t, 1);"
EXTENSION_STORE = """
    u32 index = 0;
    ext_val_t *ext = extension.lookup(&index);
    if (ext) {
        lock_xadd(&ext->total, delta);
        lock_xadd(&ext->count, 1);
    }"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("cpudist", "Summarize on- and off-CPU time per task as a histogram.", EXAMPLES)
    p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    p.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    p.add_argument("-p", "--pid", type=sched.pid_arg, help="trace this PID only")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle time")
    p.add_argument("-e", "--extension", action="store_true", help="show extension summary (average/total/count)")
    sched.add_interval_count(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    factor, _ = sched.units(args.milliseconds)
    storage, store, _ = sched.hist_storage(args)
    if args.extension:
        storage += "\n" + EXTENSION_STORAGE
        store += EXTENSION_STORE
    ends, begins = ("store_start", "update_hist") if args.offcpu else ("update_hist", "store_start")
    return (
        BPF_TEXT.replace("STORAGE", storage)
        .replace("STORE", store)
        .replace("FACTOR", factor)
        .replace("ENDS", ends)
        .replace("BEGINS", begins)
        .replace("PID_FILTER", common.pid_condition("tgid", args.pid))
        .replace("IDLE_FILTER", "0" if args.include_idle else "pid == 0")
    )


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool cpudist``: on-CPU (off-CPU under -O) time per run, in seconds; per process
    (-P) or thread (-L)."""
    section = sched.hist_storage(args)[2]
    labels = (Label(section, "id"),) if section else ()
    unit = sched.units(args.milliseconds)[1]
    what = "Off-CPU time per wait" if args.offcpu else "On-CPU time per run"
    return Program(
        "cpudist",
        bpf_text(args),
        attach=tuple(Attach("raw_tracepoint", tp, fn) for tp, fn in sched.SWITCH),
        metrics=(Histogram("dist", "rbcc_cpudist_seconds", what, labels, unit=unit),),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("cpudist", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), sched.SWITCH)
    if b is None:
        return 0
    with b:
        print("Tracing %s-CPU time... Hit Ctrl-C to end." % ("off" if args.offcpu else "on"), flush=True)
        label = sched.units(args.milliseconds)[1]
        section = sched.hist_storage(args)[2]

        def show() -> None:
            sched.print_dist(b, label, section, sched.comm_of)
            if args.extension:
                ext = b["extension"]
                total, count = ext[0].total, ext[0].count
                if count > 0:
                    print("\navg = %ld %s, total: %ld %s, count: %ld\n" % (total // count, label, total, label, count))
                ext.clear()

        sched.print_intervals(args, show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
