#!/usr/bin/env python3
"""wqlat: summarize kernel workqueue latency (from a work item's queueing to its execution) as a histogram.

From the workqueue:workqueue_queue_work and workqueue:workqueue_execute_start tracepoints, as bcc's
and libbpf-tools' wqlat; with -W one histogram per workqueue, with -w one workqueue only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sched

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool wqlat                   # summarize workqueue latency as a histogram
    rbcc tool wqlat 1 10              # print 1 second summaries, 10 times
    rbcc tool wqlat -W 1 10           # print 1 second, 10 times per workqueue
    rbcc tool wqlat -NT 1             # 1s summaries, nanoseconds, and timestamps
    rbcc tool wqlat -m 5              # 5s summaries, milliseconds
    rbcc tool wqlat -w nvmet_tcp_wq 1 # 1s summaries for workqueue nvmet_tcp_wq
"""

WQ_NAME_LEN = 24  # the kernel's WQ_NAME_LEN

BPF_TEXT = r"""
#define WQ_NAME_LEN 24

struct queued_t {
    char name[WQ_NAME_LEN];
    u64 ts;
};

struct wq_key_t {
    char name[WQ_NAME_LEN];
    u64 slot;
};

BPF_HASH(start, u64, struct queued_t, 10240);
STORAGE

TRACEPOINT_PROBE(workqueue, workqueue_queue_work) {
    struct queued_t q = {};
    TP_DATA_LOC_READ_STR(&q.name, workqueue, sizeof(q.name));
    NAME_FILTER
    u64 work = (u64)args->work;
    q.ts = bpf_ktime_get_ns();
    start.update(&work, &q);
    return 0;
}

TRACEPOINT_PROBE(workqueue, workqueue_execute_start) {
    u64 work = (u64)args->work;
    struct queued_t *q = start.lookup(&work);
    if (q == 0)
        return 0;  // queued before tracing began, or on another workqueue
    u64 delta = bpf_ktime_get_ns() - q->ts;
    SCALE
    STORE
    start.delete(&work);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("wqlat", "Summarize workqueue request latency as histograms.", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    units = p.add_mutually_exclusive_group()
    units.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    units.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-W", "--workqueues", action="store_true", help="print a histogram per work queue")
    p.add_argument("-w", "--wqname", help="print this workqueue only")
    sched.add_interval_count(p)
    return p


def name_filter(name: str | None) -> str:
    """C that leaves the probe for a work queued on another workqueue than ``name`` (the bytes of the
    name and its NUL compared, as the kernel keeps it)."""
    if name is None:
        return ""
    raw = name.encode()
    checks = " || ".join(f"q.name[{i}] != {c}" for i, c in enumerate(raw + b"\0"))
    return f"if ({checks})\n        return 0;"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    if args.nanoseconds:
        scale = ""
    else:
        scale = "delta /= 1000000;" if args.milliseconds else "delta /= 1000;"
    if args.workqueues:
        storage = "BPF_HISTOGRAM(dist, struct wq_key_t);"
        store = (
            "struct wq_key_t key = {.slot = bpf_log2l(delta)};\n"
            "    __builtin_memcpy(&key.name, q->name, sizeof(key.name));\n"
            "    dist.atomic_increment(key);"
        )
    else:
        storage, store = "BPF_HISTOGRAM(dist);", "dist.atomic_increment(bpf_log2l(delta));"
    return (
        BPF_TEXT.replace("STORAGE", storage)
        .replace("STORE", store)
        .replace("SCALE", scale)
        .replace("NAME_FILTER", name_filter(args.wqname))
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.wqname is not None and len(args.wqname.encode()) >= WQ_NAME_LEN:
        parser.error(f"workqueue name len must be less than {WQ_NAME_LEN}")
    return common.guard("wqlat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        label = "nsecs" if args.nanoseconds else "msecs" if args.milliseconds else "usecs"
        print("Tracing work queue request latency time... Hit Ctrl-C to end.", flush=True)

        def show() -> None:
            sched.print_dist(b, label, "wqname", lambda name: name.decode("utf-8", "replace"))
            sys.stdout.flush()

        sched.print_intervals(args, show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
