#!/usr/bin/env python3
"""criticalstat: trace long critical sections (IRQs or preemption disabled), with their kernel stacks.

Reads the preemptirq tracepoints (irq_disable/irq_enable, preempt_disable/preempt_enable), as bcc
does; they exist only in kernels built with CONFIG_PREEMPTIRQ_TRACEPOINTS (selected by
CONFIG_IRQSOFF_TRACER or CONFIG_PREEMPT_TRACER), which most distributions' kernels, this one
included, are not: there it says so in one line and exits with status 1. Sections that overlap a
CPU's idle time (power:cpu_idle) are left out, as in bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common
from rbcc.errors import KernelFeatureError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool criticalstat        # sections with IRQs off for more than 100 us
    rbcc tool criticalstat -p     # sections with preemption off instead
    rbcc tool criticalstat -d 500 # sections longer than 500 us
"""

BPF_TEXT = r"""
#include <linux/sched.h>

// where the section began (offsets from _stext of the caller and its parent), and since when
struct section_t {
    s32 offs[2];
    u64 ts;
    int idle_skip;
    int active;
};

struct event_t {
    u64 time;
    s64 stack_id;
    u32 cpu;
    u64 id;
    s32 offs[4];  // start caller, start parent, end caller, end parent
    char comm[TASK_COMM_LEN];
};

BPF_STACK_TRACE(stack_traces, 16384);
BPF_PERCPU_ARRAY(sections, struct section_t, 1);
BPF_PERCPU_ARRAY(idle, u64, 1);
BPF_PERF_OUTPUT(events);

static __always_inline void forget(void)
{
    int zero = 0;
    struct section_t s = {};
    sections.update(&zero, &s);
}

static __always_inline int in_idle(void)
{
    int zero = 0;
    u64 *v = idle.lookup(&zero);
    return v && *v;
}

// a section that an idle period entered or left is noise: mark it, and note whether the CPU idles
TRACEPOINT_PROBE(power, cpu_idle) {
    int zero = 0;
    struct section_t *s = sections.lookup(&zero);
    if (s && s->active)
        s->idle_skip = 1;
    u64 v = args->state < 100;  // PWR_EVENT_EXIT (-1 as u32) leaves idle
    idle.update(&zero, &v);
    return 0;
}

TRACEPOINT_PROBE(preemptirq, KIND_disable) {
    if (in_idle()) {
        forget();
        return 0;
    }
    int zero = 0;
    struct section_t s = {.ts = bpf_ktime_get_ns(), .active = 1};
    s.offs[0] = args->caller_offs;
    s.offs[1] = args->parent_offs;
    sections.update(&zero, &s);
    return 0;
}

TRACEPOINT_PROBE(preemptirq, KIND_enable) {
    int zero = 0;
    struct section_t *s = sections.lookup(&zero);
    if (in_idle() || s == 0 || !s->active || s->idle_skip) {
        forget();
        return 0;
    }
    u64 now = bpf_ktime_get_ns();
    if (s->ts > now || now - s->ts < MIN_NS) {
        forget();
        return 0;
    }
    struct event_t e = {.time = now - s->ts, .id = bpf_get_current_pid_tgid()};
    e.offs[0] = s->offs[0];
    e.offs[1] = s->offs[1];
    e.offs[2] = args->caller_offs;
    e.offs[3] = args->parent_offs;
    e.cpu = bpf_get_smp_processor_id();
    e.stack_id = stack_traces.get_stackid(args, 0);
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(args, &e, sizeof(e));
    forget();
    return 0;
}
"""

TRACEPOINTS = ("irq_disable", "irq_enable", "preempt_disable", "preempt_enable")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("criticalstat", "Trace long critical sections", EXAMPLES)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("-p", "--preemptoff", action="store_true", help="Find long sections where preemption was off")
    kind.add_argument("-i", "--irqoff", action="store_true", help="Find long sections where IRQ was off")
    p.add_argument(
        "-d",
        "--duration",
        default=100,
        type=common.positive_int,
        help="Duration in uS (microseconds) below which we filter",
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    kind = "preempt" if args.preemptoff else "irq"
    return BPF_TEXT.replace("KIND", kind).replace("MIN_NS", "%dULL" % (args.duration * 1000))


def need_tracepoints() -> None:
    """KernelFeatureError (one line) when the kernel has no preemptirq tracepoints."""
    missing = [tp for tp in TRACEPOINTS if not BPF.tracepoint_exists("preemptirq", tp)]
    if missing:
        raise KernelFeatureError(
            "needs the preemptirq tracepoints (%s), and this kernel has none: it is built without "
            "CONFIG_PREEMPTIRQ_TRACEPOINTS (set by CONFIG_IRQSOFF_TRACER or CONFIG_PREEMPT_TRACER); "
            "`rbcc tool hardirqs` and `rbcc tool softirqs` time interrupt handlers instead" % ", ".join(missing),
            feature="preemptirq tracepoints",
            alternative="rbcc tool hardirqs / softirqs",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("criticalstat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), check=need_tracepoints)
    if b is None:
        return 0
    with b:
        stext = b.ksymname("_stext")
        stacks = b["stack_traces"]

        def at(off: int) -> str:
            return b.ksym(stext + off).decode("utf-8", "replace")

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            print("===================================")
            print(
                "TASK: %s (pid %5d tid %5d) Total Time: %-9.3fus\n"
                % (e.comm.decode("utf-8", "replace"), e.id >> 32, e.id & 0xFFFFFFFF, e.time / 1000)
            )
            print("Section start: %s -> %s" % (at(e.offs[0]), at(e.offs[1])))
            print("Section end:   %s -> %s" % (at(e.offs[2]), at(e.offs[3])))
            if e.stack_id >= 0:
                for addr in stacks.walk(e.stack_id):
                    print("  %s" % b.ksym(addr, show_offset=True).decode("utf-8", "replace"))
            else:
                print("NO STACK FOUND DUE TO COLLISION")
            print("===================================")
            print("", flush=True)

        b["events"].open_perf_buffer(on_event, page_cnt=256)
        print(
            "Finding critical section with %s disabled for > %dus"
            % ("preempt" if args.preemptoff else "IRQ", args.duration),
            flush=True,
        )
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
