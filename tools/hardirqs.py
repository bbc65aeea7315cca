#!/usr/bin/env python3
"""hardirqs: summarize hard irq event time as histograms.

Time in (or the count of) each device's interrupt handler, by handler name, from the
irq:irq_handler_entry and irq:irq_handler_exit tracepoints. Interrupts without a registered handler
(the local APIC timer, IPIs) do not pass these tracepoints, as with bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sched
from rbcc.export import Counter, Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool hardirqs            # sum hard irq event time
    rbcc tool hardirqs -d         # show hard irq event time as histograms
    rbcc tool hardirqs 1 10       # print 1 second summaries, 10 times
    rbcc tool hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    rbcc tool hardirqs -c 1       # sum hard irq event time on CPU 1 only
"""

# Entries are keyed by thread and CPU: an interrupt taken while a CPU idles has TID 0 on every CPU.
BPF_TEXT = r"""
typedef struct entry_key {
    u32 tid;
    u32 cpu_id;
} entry_key_t;

typedef struct irq_key {
    char name[32];
    u64 slot;
} irq_key_t;

typedef struct irq_name {
    char name[32];
} irq_name_t;

BPF_HASH(start, entry_key_t);
BPF_HASH(irqnames, entry_key_t, irq_name_t);
BPF_HISTOGRAM(dist, irq_key_t);

TRACEPOINT_PROBE(irq, irq_handler_entry)
{
    u32 cpu = bpf_get_smp_processor_id();
    FILTER_CPU
    entry_key_t key = {.tid = (u32)bpf_get_current_pid_tgid(), .cpu_id = cpu};
    irq_name_t name = {};
    TP_DATA_LOC_READ_STR(&name.name, name, sizeof(name));
    irqnames.update(&key, &name);
    START
    return 0;
}

TRACEPOINT_PROBE(irq, irq_handler_exit)
{
    u32 cpu = bpf_get_smp_processor_id();
    entry_key_t key = {.tid = (u32)bpf_get_current_pid_tgid(), .cpu_id = cpu};
    // IRQ_NONE: the interrupt was not this handler's (a shared line), so it is not counted
    if (args->ret != IRQ_NONE) {
        irq_name_t *namep = irqnames.lookup(&key);
        if (namep == 0)
            return 0;  // its entry came before tracing began
        irq_key_t out = {.slot = 0};
        __builtin_memcpy(&out.name, namep->name, sizeof(out.name));
        STORE
    }
    DONE
    return 0;
}
"""

TIME_START = "u64 ts = bpf_ktime_get_ns(); start.update(&key, &ts);"
TIME_STORE = """u64 *tsp = start.lookup(&key);
        if (tsp == 0)
            return 0;
        u64 delta = bpf_ktime_get_ns() - *tsp;
        """


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("hardirqs", "Summarize hard irq event time as histograms", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--count", action="store_true", help="show event counts instead of timing")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=int, help="trace this CPU only")
    p.add_argument(
        "interval", nargs="?", type=common.positive_int, default=sched.FOREVER, help="output interval, in seconds"
    )
    p.add_argument("outputs", nargs="?", type=common.positive_int, default=sched.FOREVER, help="number of outputs")
    return p


def units(args: argparse.Namespace) -> tuple[int, str]:
    """(divisor of the nanoseconds measured, label)."""
    return sched.irq_units(args.count, args.nanoseconds)


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    factor, _ = units(args)
    if args.count:
        start, store, done = "", "dist.atomic_increment(out);", "irqnames.delete(&key);"
    else:
        start, done = TIME_START, "start.delete(&key);\n    irqnames.delete(&key);"
        if args.dist:
            store = TIME_STORE + f"out.slot = bpf_log2l(delta / {factor});\n        dist.atomic_increment(out);"
        else:
            store = TIME_STORE + "dist.atomic_increment(out, delta);"
    cpu = sched.cpu_filter(args.cpu)
    return BPF_TEXT.replace("FILTER_CPU", cpu).replace("START", start).replace("STORE", store).replace("DONE", done)


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool hardirqs``: time in each hard IRQ handler (a count under -C, a histogram
    under -d), by handler name."""
    irq = (Label("irq", "name", "string"),)
    if args.count:
        metric: Counter | Histogram = Counter("dist", "rbcc_hardirqs", "Hard IRQs handled", irq)
    elif args.dist:
        metric = Histogram("dist", "rbcc_hardirqs_seconds", "Time per hard IRQ", irq, unit=units(args)[1])
    else:
        metric = Counter("dist", "rbcc_hardirqs_seconds", "Time in hard IRQ handlers", irq, scale=1e-9)
    return Program("hardirqs", bpf_text(args), metrics=(metric,))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count and (args.dist or args.nanoseconds):
        print("The --count option can't be used with time-based options", file=sys.stderr)
        return 2
    return common.guard("hardirqs", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    return sched.run_irqs(
        args,
        bpf_text(args),
        kind="hard",
        counting=args.count,
        width=26,
        section_fn=bytes.decode,
        row_name=lambda k: k.name.decode("utf-8", "replace"),
        schedule=_interval_args(args),
    )


def _interval_args(args: argparse.Namespace) -> argparse.Namespace:
    # hardirqs names its count of outputs "outputs" (-C is taken by --count)
    return argparse.Namespace(interval=args.interval, count=args.outputs, timestamp=args.timestamp)


if __name__ == "__main__":
    sys.exit(main())
