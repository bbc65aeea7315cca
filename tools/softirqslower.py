#!/usr/bin/env python3
"""softirqslower: trace softirqs that waited or ran longer than a threshold, one line each.

Two latencies of each softirq, from the irq:softirq_raise, irq:softirq_entry and irq:softirq_exit
tracepoints: from its raise (by a hard interrupt, or by code that raises one itself, such as the
network stack on loopback) to its handler starting on that CPU ("irq(hard) to softirq"), and the
handler's own run time ("softirq runtime"). The COMM is the task that was interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.tools.softirqs import NAMES

__all__ = ["STAGES", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool softirqslower          # softirqs waiting or running over 10 ms
    rbcc tool softirqslower 100      # over 100 us
    rbcc tool softirqslower -c 1 0   # every softirq of CPU 1
"""

# the event's stage, as printed
STAGES = ("irq(hard) to softirq", "softirq runtime")

BPF_TEXT = r"""
struct stamps_t {
    u64 raised[NR_VECS];
    u64 entered;
};

struct event_t {
    u64 lat_ns;
    u32 cpu;
    u32 vec;
    u32 stage;
    char comm[TASK_COMM_LEN];
};

BPF_PERCPU_ARRAY(stamps, struct stamps_t, 1);
BPF_PERF_OUTPUT(events);

static __always_inline void report(void *ctx, u64 lat_ns, u32 vec, u32 stage) {
    struct event_t e = {.lat_ns = lat_ns, .cpu = bpf_get_smp_processor_id(), .vec = vec, .stage = stage};
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(ctx, &e, sizeof(e));
}

TRACEPOINT_PROBE(irq, softirq_raise) {
    int zero = 0;
    u32 vec = args->vec;
    struct stamps_t *s = stamps.lookup(&zero);
    if (!s || vec >= NR_VECS || CPU_FILTER)
        return 0;
    // a softirq raised again before it ran keeps its first raise: the wait is from there
    if (!s->raised[vec])
        s->raised[vec] = bpf_ktime_get_ns();
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_entry) {
    int zero = 0;
    u32 vec = args->vec;
    struct stamps_t *s = stamps.lookup(&zero);
    if (!s || vec >= NR_VECS || CPU_FILTER)
        return 0;
    u64 now = bpf_ktime_get_ns();
    s->entered = now;
    u64 raised = s->raised[vec];
    s->raised[vec] = 0;
    if (raised && now - raised >= MIN_NS)
        report(args, now - raised, vec, 0);
    return 0;
}

TRACEPOINT_PROBE(irq, softirq_exit) {
    int zero = 0;
    u32 vec = args->vec;
    struct stamps_t *s = stamps.lookup(&zero);
    if (!s || vec >= NR_VECS || CPU_FILTER || !s->entered)
        return 0;
    u64 ran = bpf_ktime_get_ns() - s->entered;
    s->entered = 0;
    if (ran >= MIN_NS)
        report(args, ran, vec, 1);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("softirqslower", "Trace softirqs that waited or ran longer than a threshold", EXAMPLES)
    p.add_argument("-c", "--cpu", type=common.non_negative_int, help="trace this CPU only")
    p.add_argument(
        "min_us", nargs="?", type=common.non_negative_int, default=10000, help="minimum latency to show, us (10000)"
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    cpu = "0" if args.cpu is None else f"bpf_get_smp_processor_id() != {int(args.cpu)}"
    return (
        BPF_TEXT.replace("NR_VECS", str(len(NAMES)))
        .replace("CPU_FILTER", cpu)
        .replace("MIN_NS", f"{int(args.min_us) * 1000}ULL")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("softirqslower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    print("Tracing softirq latency higher than %d us... Hit Ctrl-C to end." % args.min_us)
    print("%-8s %-20s %-8s %-14s %-6s %s" % ("TIME", "STAGE", "SOFTIRQ", "LAT(us)", "CPU", "COMM"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        name = NAMES[e.vec] if e.vec < len(NAMES) else str(e.vec)
        print(
            "%-8s %-20s %-8s %-14d %-6d %s"
            % (
                time.strftime("%H:%M:%S"),
                STAGES[e.stage],
                name,
                e.lat_ns // 1000,
                e.cpu,
                e.comm.decode("utf-8", "replace"),
            ),
            flush=True,
        )

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
