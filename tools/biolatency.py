#!/usr/bin/env python3
"""biolatency: summarize block device I/O latency as a histogram.

Latency runs from the request's issue to the driver (block:block_rq_issue; with -Q from its creation,
block:block_io_start) to its completion (block:block_rq_complete): the tracepoints that fire where
bcc's kprobes on blk_mq_start_request, blk_account_io_start and blk_account_io_done do, read in their
raw form so that each request is keyed by its own address, as in bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common, pictures
from rbcc.export import Attach, Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool biolatency                    # summarize block I/O latency as a histogram
    rbcc tool biolatency 1 10               # print 1 second summaries, 10 times
    rbcc tool biolatency -mT 1              # 1s summaries, milliseconds, and timestamps
    rbcc tool biolatency -Q                 # include OS queued time in I/O time
    rbcc tool biolatency -D                 # show each disk device separately
    rbcc tool biolatency -F                 # show I/O flags separately
    rbcc tool biolatency -j                 # print a dictionary
    rbcc tool biolatency -e                 # show extension summary(total, average)
    rbcc tool biolatency -d sdc             # Trace sdc only
    rbcc tool biolatency --heatmap io.png 60 1   # a minute of latency as a heatmap, 1 column a second
"""

BPF_TEXT = r"""
#include <linux/blk-mq.h>

struct disk_key_t {
    char disk[DISK_NAME_LEN];
    u64 slot;
};

struct flag_key_t {
    u64 flags;
    u64 slot;
};

struct ext_val_t {
    u64 total;
    u64 count;
};

BPF_HASH(start, struct request *, u64, 10240);
STORAGE

int trace_req_start(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    DISK_FILTER
    u64 now = bpf_ktime_get_ns();
    start.update(&rq, &now);
    return 0;
}

int trace_req_done(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    u64 *since = start.lookup(&rq);
    if (!since)
        return 0;   // issued before we started, or another disk
    u64 delta = (bpf_ktime_get_ns() - *since) / UNIT;
    start.delete(&rq);
    STORE
    return 0;
}
"""

STORE_TOTAL = "dist.atomic_increment(bpf_log2l(delta));"
STORE_DISK = """struct disk_key_t key = {.slot = bpf_log2l(delta)};
    bpf_probe_read_kernel_str(&key.disk, sizeof(key.disk), rq->q->disk->disk_name);
    dist.atomic_increment(key);"""
STORE_FLAGS = """struct flag_key_t key = {.slot = bpf_log2l(delta), .flags = rq->cmd_flags};
    dist.atomic_increment(key);"""
STORE_EXTENSION = """
    u32 zero = 0;
    struct ext_val_t *ext = extension.lookup(&zero);
    if (ext) {
        __sync_fetch_and_add(&ext->total, delta);
        __sync_fetch_and_add(&ext->count, 1);
    }"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("biolatency", "Summarize block device I/O latency as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    per = p.add_mutually_exclusive_group()
    per.add_argument("-D", "--disks", action="store_true", help="print a histogram per disk device")
    per.add_argument("-F", "--flags", action="store_true", help="print a histogram per set of I/O flags")
    p.add_argument("-e", "--extension", action="store_true", help="summarize average/total value")
    p.add_argument(
        "interval", nargs="?", type=common.positive_int, default=99999999, help="output interval, in seconds"
    )
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    p.add_argument("-j", "--json", action="store_true", help="json output")
    block.add_disk(p)
    pictures.add_heatmap(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    if args.disks:
        storage, store = "BPF_HISTOGRAM(dist, struct disk_key_t);", STORE_DISK
    elif args.flags:
        storage, store = "BPF_HISTOGRAM(dist, struct flag_key_t);", STORE_FLAGS
    else:
        storage, store = "BPF_HISTOGRAM(dist);", STORE_TOTAL
    if args.extension:
        storage += "\nBPF_ARRAY(extension, struct ext_val_t, 1);"
        store += STORE_EXTENSION
    return (
        BPF_TEXT.replace("STORAGE", storage)
        .replace("STORE", store)
        .replace("REQUEST", block.REQUEST)
        .replace("DISK_FILTER", block.disk_filter(args.disk))
        .replace("UNIT", "1000000" if args.milliseconds else "1000")
    )


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool biolatency``: the latency histogram in seconds; per disk under -D, per set of
    I/O flags under -F."""
    labels = (Label("disk", "disk", "string"),) if args.disks else ()
    labels = (Label("flags", "flags", block.flags_name),) if args.flags else labels
    start = block.submit_tracepoint() if args.queued else "block_rq_issue"
    unit = "msecs" if args.milliseconds else "usecs"
    return Program(
        "biolatency",
        bpf_text(args),
        attach=(
            Attach("raw_tracepoint", start, "trace_req_start"),
            Attach("raw_tracepoint", "block_rq_complete", "trace_req_done"),
        ),
        metrics=(Histogram("dist", "rbcc_biolatency_seconds", "Block I/O latency", labels, unit=unit),),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    pictures.check_heatmap(parser, args)
    return common.guard("biolatency", lambda: run(args))


def _disk_print(name: bytes) -> str:
    return name.decode("utf-8", "replace") or "<unknown>"


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    b.attach_raw_tracepoint(
        tp=block.submit_tracepoint() if args.queued else "block_rq_issue", fn_name="trace_req_start"
    )
    b.attach_raw_tracepoint(tp="block_rq_complete", fn_name="trace_req_done")
    label = "msecs" if args.milliseconds else "usecs"
    if not args.json:
        print("Tracing block device I/O... Hit Ctrl-C to end.", flush=True)
    dist = b["dist"]
    with b, pictures.heatmap_intervals(args, "biolatency", dist, label, "Block I/O latency") as intervals:
        for last in intervals:
            print()
            if args.timestamp:
                print("%-8s" % common.strftime_now())
            if args.flags:
                section: tuple[str, object] = ("flags", block.flags_name)
            else:
                section = ("disk", _disk_print)
            if args.json:
                dist.print_json_hist(label, *section)
            else:
                dist.print_log2_hist(label, *section)
                if args.extension:
                    ext = b["extension"][0]
                    if ext.count > 0:
                        print(
                            "\navg = %ld %s, total: %ld %s, count: %ld\n"
                            % (ext.total // ext.count, label, ext.total, label, ext.count)
                        )
                    b["extension"].clear()
            dist.clear()
            sys.stdout.flush()
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
