#!/usr/bin/env python3
"""fsslower: trace file system reads, writes, opens and fsyncs slower than a threshold.

As libbpf-tools' fsslower, for btrfs, ext4, nfs or xfs (-t), it times the file system's own functions
(ext4_file_read_iter, xfs_file_fsync, ...) with kprobes and kretprobes; libbpf-tools uses fentry where
the kernel allows it. A file system's operations have no tracepoints, so a kernel without kprobes
cannot run it: it says so in one line and exits with status 1; `rbcc tool fileslower` times reads and
writes at the system calls instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common, fsops

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool fsslower -t ext4             # trace ext4 operations slower than 10 ms
    rbcc tool fsslower -t nfs -p 1216      # trace nfs operations with PID 1216 only
    rbcc tool fsslower -t xfs -c -d 1      # trace xfs operations for 1s with csv output
"""

TYPES = {0: b"R", 1: b"W", 2: b"O", 3: b"F"}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("fsslower", "Trace file system operations slower than a threshold.", EXAMPLES)
    p.add_argument("-c", "--csv", action="store_true", help="output as csv")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    p.add_argument("-p", "--pid", type=int, help="process ID to trace")
    p.add_argument(
        "-m", "--min", type=common.non_negative_int, default=10, help="min latency to trace, in ms (default 10)"
    )
    fsops.add_type(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return fsops.slower_text(args.pid, args.min)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("fsslower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = fsops.load(args, "fsslower", args.type, bpf_text(args), "trace_rw_entry", fsops.SLOWER_ALTERNATIVE)
    if b is None:
        return 0
    with b:
        if args.csv:
            print("ENDTIME_ns,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE")
        else:
            what = f"Tracing {args.type} operations" + (f" slower than {args.min} ms" if args.min else "")
            print(what + (f" for {args.duration} secs." if args.duration else "... Hit Ctrl-C to end."))
            print(
                "%-8s %-16s %-7s %1s %-7s %-8s %7s %s"
                % ("TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME")
            )
        sys.stdout.flush()
        b["events"].open_perf_buffer(fsops.slower_events(b, args.csv, TYPES, fsops.LIBBPF_LINE, 1), page_cnt=64)
        end = time.monotonic() + args.duration if args.duration else None
        common.poll_events(b, until=None if end is None else lambda: time.monotonic() > end)
    return 0


if __name__ == "__main__":
    sys.exit(main())
