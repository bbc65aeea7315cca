#!/usr/bin/env python3
"""cachestat: count page cache hits and misses, with the hit ratio, per interval.

It counts calls of the page cache's functions with kprobes, as bcc: folio_mark_accessed (accesses),
filemap_add_folio (misses: pages added), folio_account_dirtied and mark_buffer_dirty (dirties); older
kernels' mark_page_accessed, add_to_page_cache_lru and account_page_dirtied where those are the
names. Page accesses have no tracepoint, so a kernel without kprobes cannot run it: it says so in one
line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, pagecache, proc

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool cachestat          # page cache statistics, every second
    rbcc tool cachestat -T 5 3   # with timestamps, every 5 seconds, 3 times
"""

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>

BPF_ARRAY(counts, u64, 4);

int do_accessed(struct pt_regs *ctx) { counts.atomic_increment(0); return 0; }
int do_added(struct pt_regs *ctx) { counts.atomic_increment(1); return 0; }
int do_dirtied(struct pt_regs *ctx) { counts.atomic_increment(2); return 0; }
int do_buffer_dirty(struct pt_regs *ctx) { counts.atomic_increment(3); return 0; }
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("cachestat", "Count cache kernel function calls", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("interval", nargs="?", type=common.positive_int, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=int, default=-1, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (the same for every run)."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("cachestat", lambda: run(args))


def ratios(accessed: int, added: int, dirtied: int, buffer_dirty: int) -> tuple[int, int, float]:
    """(hits, misses, hit ratio) from the counts, as bcc derives them: accesses less buffer dirties
    are lookups; pages added, less those dirtied, are misses; a readahead that overshoots makes all
    lookups misses."""
    total = max(accessed - buffer_dirty, 0)
    misses = max(added - dirtied, 0)
    hits = total - misses
    if hits < 0:
        misses, hits = total, 0
    return hits, misses, hits / total if total > 0 else 0.0


def run(args: argparse.Namespace) -> int:
    b = pagecache.load(args, "cachestat", bpf_text(args), "`rbcc tool vfsstat` counts reads and writes at the syscalls")
    if b is None:
        return 0
    with b:
        header = "%-8s " % "TIME" if args.timestamp else ""
        print(
            header + "%8s %8s %8s %8s %12s %10s" % ("HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB")
        )
        sys.stdout.flush()
        counts = b["counts"]
        for last in common.intervals(args.interval, args.count if args.count > 0 else None):
            values = [counts[i].value for i in range(4)]
            counts.clear()
            hits, misses, ratio = ratios(*values)
            buffers, cached = proc.meminfo_mb("Buffers", "Cached")
            stamp = "%-8s " % common.strftime_now() if args.timestamp else ""
            print(
                stamp
                + "%8d %8d %8d %7.2f%% %12.0f %10.0f"
                % (hits, misses, values[pagecache.BUFFER_DIRTY], 100 * ratio, buffers, cached)
            )
            sys.stdout.flush()
            if last:
                print("Detaching...")
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
