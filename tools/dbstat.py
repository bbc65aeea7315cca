#!/usr/bin/env python3
"""dbstat: display a histogram of MySQL and PostgreSQL query latencies.

Queries are timed between the servers' USDT probes query__start and query__done (servers built with
DTrace support), in the processes given with -p, else in every running mysqld or postgres; with
-x PATH, in every process running that server binary (PostgreSQL forks a backend per connection).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, dbprobes

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool dbstat postgres     # display a histogram of PostgreSQL query latencies
    rbcc tool dbstat mysql -v     # display MySQL latencies and print the BPF program
    rbcc tool dbstat mysql -u     # display query latencies in microseconds (default: ms)
    rbcc tool dbstat mysql -m 5   # trace only queries slower than 5ms
    rbcc tool dbstat mysql -p 408 # trace queries in a specific process
    rbcc tool dbstat postgres -x /usr/lib/postgresql/15/bin/postgres -i 5  # every backend, each 5 s
"""

BPF_TEXT = r"""
BPF_HASH(temp, u64, u64);
BPF_HISTOGRAM(latency);

int probe_start(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 ts = bpf_ktime_get_ns();
    temp.update(&id, &ts);
    return 0;
}

int probe_end(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u64 *tsp = temp.lookup(&id);
    if (tsp == 0)
        return 0;  // its start came before tracing began
    u64 delta = bpf_ktime_get_ns() - *tsp;
    temp.delete(&id);
    FILTER
    delta /= SCALE;
    latency.atomic_increment(bpf_log2l(delta));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dbstat", "Display a histogram of MySQL and PostgreSQL query latencies", EXAMPLES)
    dbprobes.add_db_options(p, 0, "path to the server binary: its USDT probes in every process running it")
    p.add_argument(
        "-u",
        "--microseconds",
        action="store_true",
        help="display query latencies in microseconds (default: milliseconds)",
    )
    p.add_argument(
        "-i", "--interval", type=common.positive_int, default=99999999, help="print summary at this interval (seconds)"
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure)."""
    threshold = f"if (delta / 1000000 < {args.threshold})\n        return 0;" if args.threshold else ""
    return BPF_TEXT.replace("SCALE", "1000" if args.microseconds else "1000000").replace("FILTER", threshold)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("dbstat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    text = bpf_text(args)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    pids = [] if args.path else dbprobes.server_pids(args)
    contexts = dbprobes.usdt_contexts(pids, args.path, "probe_start", "probe_end")
    b = BPF(text=text, usdt_contexts=contexts)
    what = "application %s" % args.path if args.path else "pids %s" % ", ".join(map(str, pids))
    label = "query latency (%s)" % ("us" if args.microseconds else "ms")
    with b:
        print("Tracing database queries for %s slower than %d ms..." % (what, args.threshold), flush=True)
        latencies = b["latency"]
        for _ in common.intervals(args.interval, None):
            print("[%s]" % time.strftime("%H:%M:%S"))
            latencies.print_log2_hist(label)
            print("", flush=True)
            latencies.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
