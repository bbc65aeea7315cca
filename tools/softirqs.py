#!/usr/bin/env python3
"""softirqs: summarize soft irq event time as histograms.

Time in (or the count of) each kind of softirq (net_rx, timer, rcu, ...), from the irq:softirq_entry
and irq:softirq_exit tracepoints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sched
from rbcc.export import Counter, Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool softirqs            # sum soft irq event time
    rbcc tool softirqs -C         # show the number of soft irq events
    rbcc tool softirqs -d         # show soft irq event time as histograms
    rbcc tool softirqs 1 10       # print 1 second summaries, 10 times
    rbcc tool softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    rbcc tool softirqs -c 1       # sum soft irq event time on CPU 1 only
"""

# The kernel's softirq_to_name[], in vector order.
NAMES = ["hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu"]

BPF_TEXT = r"""
typedef struct entry_key {
    u32 pid;
    u32 cpu;
} entry_key_t;

typedef struct irq_key {
    u32 vec;
    u64 slot;
} irq_key_t;

typedef struct account_val {
    u64 ts;
    u32 vec;
} account_val_t;

BPF_HASH(start, entry_key_t, account_val_t);
BPF_HISTOGRAM(dist, irq_key_t);
"""

COUNT_PROBES = r"""
TRACEPOINT_PROBE(irq, softirq_entry)
{
    u32 cpu = bpf_get_smp_processor_id();
    FILTER_CPU
    irq_key_t key;
    __builtin_memset(&key, 0, sizeof(key));  // the padding after vec is part of the key
    key.vec = args->vec;
    dist.atomic_increment(key);
    return 0;
}
"""

# Entries are keyed by thread and CPU: a softirq run from the idle loop has TID 0 on every CPU.
TIME_PROBES = r"""
TRACEPOINT_PROBE(irq, softirq_entry)
{
    u32 cpu = bpf_get_smp_processor_id();
    FILTER_CPU
    entry_key_t key = {.pid = (u32)bpf_get_current_pid_tgid(), .cpu = cpu};
    account_val_t val = {.ts = bpf_ktime_get_ns(), .vec = args->vec};
    start.update(&key, &val);
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_exit)
{
    u32 cpu = bpf_get_smp_processor_id();
    FILTER_CPU
    entry_key_t entry_key = {.pid = (u32)bpf_get_current_pid_tgid(), .cpu = cpu};
    account_val_t *valp = start.lookup(&entry_key);
    if (valp == 0)
        return 0;  // its entry came before tracing began
    u64 delta = bpf_ktime_get_ns() - valp->ts;
    irq_key_t key;
    __builtin_memset(&key, 0, sizeof(key));  // the padding after vec is part of the key
    key.vec = valp->vec;
    STORE
    start.delete(&entry_key);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("softirqs", "Summarize soft irq event time as histograms.", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--events", action="store_true", help="show the number of soft irq events")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=int, help="trace this CPU only")
    sched.add_interval_count(p)
    return p


def units(args: argparse.Namespace) -> tuple[int, str]:
    """(divisor of the nanoseconds measured, label)."""
    return sched.irq_units(args.events, args.nanoseconds)


def vec_to_name(vec: int) -> str:
    return NAMES[vec] if 0 <= vec < len(NAMES) else str(vec)


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    factor, _ = units(args)
    if args.dist:
        store = f"key.slot = bpf_log2l(delta / {factor});\n    dist.atomic_increment(key);"
    else:
        store = "dist.atomic_increment(key, delta);"
    cpu = sched.cpu_filter(args.cpu)
    probes = COUNT_PROBES if args.events else TIME_PROBES
    return BPF_TEXT + probes.replace("FILTER_CPU", cpu).replace("STORE", store)


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool softirqs``: time in each soft IRQ (a count under -C, a histogram under -d),
    by soft IRQ name."""
    vec = (Label("softirq", "vec", vec_to_name),)
    if args.events:
        metric: Counter | Histogram = Counter("dist", "rbcc_softirqs", "Soft IRQs run", vec)
    elif args.dist:
        metric = Histogram("dist", "rbcc_softirqs_seconds", "Time per soft IRQ", vec, unit=units(args)[1])
    else:
        metric = Counter("dist", "rbcc_softirqs_seconds", "Time in soft IRQs", vec, scale=1e-9)
    return Program("softirqs", bpf_text(args), metrics=(metric,))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.events and (args.dist or args.nanoseconds):
        print("The --events option can't be used with time-based options", file=sys.stderr)
        return 2
    return common.guard("softirqs", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    return sched.run_irqs(
        args,
        bpf_text(args),
        kind="soft",
        counting=args.events,
        width=16,
        section_fn=vec_to_name,
        row_name=lambda k: vec_to_name(k.vec),
    )


if __name__ == "__main__":
    sys.exit(main())
