#!/usr/bin/env python3
"""numamove: show page migrations of type NUMA misplaced per second, with the time they took.

Counts the migrations that NUMA balancing makes (a page found in use from another node's CPU moved
to that node): the migrate:mm_migrate_pages_start and migrate:mm_migrate_pages tracepoints around
each migrate_pages() call, keeping those whose reason is MR_NUMA_MISPLACED. libbpf-tools times
migrate_misplaced_folio() (migrate_misplaced_page() before 6.1) with kprobes or fentry instead: the
same calls, less the few instructions that isolate the folio before migrate_pages(). A machine with
one NUMA node, or with NUMA balancing off (kernel.numa_balancing = 0), shows 0 every second.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool numamove           # NUMA balancing migrations, and their time, every second
"""

BPF_TEXT = r"""
BPF_HASH(start, u32, u64, 10240);
BPF_ARRAY(totals, u64, 2);  // migrations, their time in ms

TRACEPOINT_PROBE(migrate, mm_migrate_pages_start) {
    if (args->reason != MR_NUMA_MISPLACED)
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    start.update(&tid, &ts);
    return 0;
}

TRACEPOINT_PROBE(migrate, mm_migrate_pages) {
    if (args->reason != MR_NUMA_MISPLACED)
        return 0;
    u32 tid = (u32)bpf_get_current_pid_tgid();
    u64 *tsp = start.lookup(&tid);
    if (tsp == 0)
        return 0;
    u64 ms = (bpf_ktime_get_ns() - *tsp) / 1000000;
    start.delete(&tid);
    totals.atomic_increment(0);
    totals.atomic_increment(1, ms);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    return common.parser(
        "numamove",
        "Show page migrations of type NUMA misplaced per second (NUMA balancing's migrations).",
        EXAMPLES,
    )


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); numamove has no options that change it."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("numamove", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("%-10s %18s %18s" % ("TIME", "NUMA_migrations", "NUMA_migrations_ms"), flush=True)
        totals = b["totals"]
        # the counters are never cleared: a migration counted between a read and a clear would be lost
        seen = (0, 0)
        while True:
            time.sleep(1)  # Ctrl-C ends the tool here, through guard
            now = (totals[0].value, totals[1].value)
            print("%-10s %18d %18d" % (common.strftime_now(), now[0] - seen[0], now[1] - seen[1]), flush=True)
            seen = now


if __name__ == "__main__":
    sys.exit(main())
