#!/usr/bin/env python3
"""biopattern: identify random and sequential disk access patterns.

Each completed request (block:block_rq_complete, as bcc) is sequential when it starts where the
disk's previous one ended, random otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common
from rbcc.export import Counter, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool biopattern            # show block device I/O pattern.
    rbcc tool biopattern 1 10       # print 1 second summaries, 10 times
    rbcc tool biopattern -d sdb     # show sdb only
"""

BPF_TEXT = r"""
struct counter_t {
    u64 last_sector;
    u64 bytes;
    u32 sequential;
    u32 random;
};

BPF_HASH(counters, u32, struct counter_t);

TRACEPOINT_PROBE(block, block_rq_complete) {
    u32 dev = args->dev;
    u64 sector = args->sector;
    u32 sectors = args->nr_sector;
    DISK_FILTER
    struct counter_t zero = {};
    struct counter_t *c = counters.lookup_or_try_init(&dev, &zero);
    if (!c)
        return 0;
    // the first request of a disk only sets where the next sequential one would start
    if (c->last_sector) {
        if (c->last_sector == sector)
            __sync_fetch_and_add(&c->sequential, 1);
        else
            __sync_fetch_and_add(&c->random, 1);
        __sync_fetch_and_add(&c->bytes, (u64)sectors * 512);
    }
    c->last_sector = sector + sectors;
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("biopattern", "Show block device I/O pattern.", EXAMPLES)
    block.add_disk(p)
    p.add_argument("interval", nargs="?", type=common.positive_int, default=99999999, help="Output interval in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="Number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    disk = args.disk
    where = f"if (dev != {block.mkdev(disk.major, disk.minor)})\n        return 0;" if disk else ""
    return BPF_TEXT.replace("DISK_FILTER", where)


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool biopattern``: completed block I/O per disk, sequential and random, and bytes."""
    disk = (Label("disk", "", "disk"),)
    return Program(
        "biopattern",
        bpf_text(args),
        metrics=(
            Counter(
                "counters",
                "rbcc_biopattern_sequential",
                "Requests starting where the last ended",
                disk,
                value="sequential",
            ),
            Counter("counters", "rbcc_biopattern_random", "Requests starting elsewhere", disk, value="random"),
            Counter("counters", "rbcc_biopattern_bytes", "Bytes of the requests counted", disk, value="bytes"),
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("biopattern", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    names = {block.mkdev(*k): v for k, v in block.disk_names().items()}
    print("%-9s %-7s %5s %5s %8s %10s" % ("TIME", "DISK", "%RND", "%SEQ", "COUNT", "KBYTES"), flush=True)
    counters = b["counters"]
    with b:
        for last in common.intervals(args.interval, args.count):
            for dev, c in counters.items():
                total = c.random + c.sequential
                if total == 0:
                    continue
                rnd = int(round(c.random * 100 / total))
                print(
                    "%-9s %-7s %5d %5d %8d %10d"
                    % (common.strftime_now(), names.get(dev.value, "Unknown"), rnd, 100 - rnd, total, c.bytes // 1024)
                )
            counters.clear()
            sys.stdout.flush()
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
