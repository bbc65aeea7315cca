#!/usr/bin/env python3
"""mdflush: trace md (software RAID) flush requests, with the process that made them.

bcc hooks md_flush_request with a kprobe. md has no tracepoint of its own, but every bio enters a
device through block:block_bio_queue, and md hands a bio to md_flush_request exactly when it comes
to an md array with REQ_PREFLUSH set: so the raw form of that tracepoint (handed the bio) shows the
same flushes, in the same task, filtered to md disks (named md*) and flush bios. Kernels before 5.11
passed the tracepoint the queue first, and are not supported.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool mdflush           # trace md flush requests
"""

BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/blkdev.h>
#include <linux/bio.h>

struct data_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
    char disk[DISK_NAME_LEN];
};

BPF_PERF_OUTPUT(events);

// a bio enters a device (submit_bio_noacct): md passes those that ask for a flush to md_flush_request
RAW_TRACEPOINT_PROBE(block_bio_queue) {
    struct bio *bio = (struct bio *)ctx->args[0];
    if (!(bio->bi_opf & (1U << __REQ_PREFLUSH)))
        return 0;
    struct gendisk *disk = bio->bi_bdev->bd_disk;
    struct data_t data = {};
    bpf_probe_read_kernel_str(&data.disk, sizeof(data.disk), disk->disk_name);
    if (data.disk[0] != 'm' || data.disk[1] != 'd')
        return 0;   // not an md array
    data.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    return common.parser(
        "mdflush",
        "Trace md flush events\n\n"
        "Seen where the flush bio enters the md array (block:block_bio_queue), not by a kprobe on\n"
        "md_flush_request, which md calls for each of those bios.",
        EXAMPLES,
    )


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); mdflush has no options that change it."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("mdflush", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing md flush requests... Hit Ctrl-C to end.")
        print("%-8s %-7s %-16s %s" % ("TIME", "PID", "COMM", "DEVICE"), flush=True)

        def print_event(cpu: int, data: Any, size: int) -> None:
            e = b["events"].event(data)
            print(
                "%-8s %-7d %-16s %s"
                % (
                    common.strftime_now(),
                    e.pid,
                    e.comm.decode("utf-8", "replace"),
                    e.disk.decode("utf-8", "replace"),
                ),
                flush=True,
            )

        b["events"].open_perf_buffer(print_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
