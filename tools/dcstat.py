#!/usr/bin/env python3
"""dcstat: directory entry cache (dcache) statistics per second: references, slow lookups, misses.

As bcc, it counts calls of lookup_fast (REFS, one per path component looked up) with a kprobe and the
returns of d_lookup (SLOW; MISS when it found nothing) with a kretprobe. The dcache has no
tracepoints, so a kernel without kprobes cannot run it: it says so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common

__all__ = ["FAST_RE", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool dcstat          # dcache statistics, per second
    rbcc tool dcstat 5 10     # 5 second summaries, 10 times
"""

# lookup_fast, or its copy the compiler specialised (lookup_fast.constprop.0)
FAST_RE = r"^lookup_fast$|^lookup_fast\.constprop\.\d+$"
ALTERNATIVE = "`rbcc tool vfsstat` and `rbcc tool statsnoop` show the opens and stats that look paths up"

STATS = ("REFS", "SLOW", "MISS")  # array indexes 1..3

BPF_TEXT = r"""
enum stats {
    S_REFS = 1,
    S_SLOW,
    S_MISS,
    S_MAXSTAT
};

BPF_ARRAY(stats, u64, S_MAXSTAT);

// each path component the fast (RCU) walk looks up is a reference
int count_fast(struct pt_regs *ctx) {
    stats.atomic_increment(S_REFS);
    return 0;
}

// d_lookup runs when the fast walk fails; when it finds nothing either, it is a miss
int count_lookup(struct pt_regs *ctx) {
    stats.atomic_increment(S_SLOW);
    if (PT_REGS_RC(ctx) == 0)
        stats.atomic_increment(S_MISS);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dcstat", "Count directory entry cache (dcache) lookups, hits and misses", EXAMPLES)
    p.add_argument("interval", nargs="?", type=common.positive_int, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); dcstat has no options that change it."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("dcstat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if not args.ebpf:
        block.need_kprobes("dcstat", "lookup_fast and d_lookup", "the dcache has no tracepoints", ALTERNATIVE)
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        b.attach_kprobe(event_re=FAST_RE, fn_name="count_fast")
        b.attach_kretprobe(event="d_lookup", fn_name="count_lookup")
        print("%-8s  " % "TIME" + "".join(" %8s" % (s + "/s") for s in STATS) + " %8s" % "HIT%", flush=True)
        stats = b["stats"]
        for last in common.intervals(args.interval, args.count):
            refs, slow, miss = (stats[i].value for i in range(1, len(STATS) + 1))
            line = "%-8s: " % common.strftime_now() + "".join(" %8d" % (v // args.interval) for v in (refs, slow, miss))
            print(line + (" %8.2f" % (100.0 * (refs - miss) / refs) if refs else " %7s%%" % "-"), flush=True)
            stats.clear()
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
