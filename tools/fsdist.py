#!/usr/bin/env python3
"""fsdist: summarize file system operation latency (read, write, open, fsync, getattr) as histograms.

As libbpf-tools' fsdist, for btrfs, ext4, nfs or xfs (-t), it times the file system's own functions
(ext4_file_read_iter, xfs_file_fsync, nfs_getattr, ...) with kprobes and kretprobes; libbpf-tools uses
fentry where the kernel allows it. A file system's operations have no tracepoints, so a kernel without
kprobes cannot run it: it says so in one line (naming what to use instead) and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, fsops

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool fsdist -t ext4             # show ext4 operations latency as a histogram
    rbcc tool fsdist -t nfs -p 1216      # trace nfs operations with PID 1216 only
    rbcc tool fsdist -t xfs 1 10         # trace xfs operations, 1s summaries, 10 times
    rbcc tool fsdist -t btrfs -m 5       # trace btrfs operation, 5s summaries, in ms
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("fsdist", "Summarize file system operations latency", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="print timestamp")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-p", "--pid", type=int, help="process ID to trace")
    fsops.add_type(p)
    p.add_argument("interval", nargs="?", type=common.positive_int, default=99999999, help="output interval")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return fsops.dist_text(args, args.type)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("fsdist", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = fsops.load(args, "fsdist", args.type, bpf_text(args), "trace_entry", fsops.DIST_ALTERNATIVE)
    if b is None:
        return 0
    with b:
        print(f"Tracing {args.type} operation latency... Hit Ctrl-C to end.", flush=True)
        for last in common.intervals(args.interval, args.count):
            print()
            if args.timestamp:
                print("%-8s" % common.strftime_now())
            fsops.print_dists(b, "msecs" if args.milliseconds else "usecs", quoted=True)
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
