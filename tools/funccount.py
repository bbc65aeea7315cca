#!/usr/bin/env python3
"""funccount: count calls of functions, tracepoints and USDT probes matching a pattern.

Kernel functions (``vfs_*``, ``p::name``) need kprobes; where the kernel has none, funccount says so
in one line: count tracepoints instead (``t:syscalls:sys_enter_*``, ``t:sched:*``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._specs.pattern import parse_pattern
from rbcc._tools import common, counting

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc funccount 'vfs_*'             # count kernel fns starting with "vfs"
    rbcc funccount -r '^vfs.*'         # same as above, using regular expressions
    rbcc funccount -Ti 5 'vfs_*'       # output every 5 seconds, with timestamps
    rbcc funccount -d 10 'vfs_*'       # trace for 10 seconds only
    rbcc funccount -p 185 'vfs_*'      # count vfs calls for PID 185 only
    rbcc funccount t:sched:sched_fork  # count calls to the sched_fork tracepoint
    rbcc funccount 't:syscalls:sys_enter_*'  # count every system call, by name
    rbcc funccount -p 185 u:node:gc*   # count all GC USDT probes in node, PID 185
    rbcc funccount c:malloc            # count all malloc() calls in libc
    rbcc funccount go:os.*             # count all "os.*" calls in libgo
    rbcc funccount -p 185 go:os.*      # count all "os.*" calls in libgo, PID 185
    rbcc funccount ./test:read*        # count "read*" calls in the ./test binary
    rbcc funccount -c 1 'vfs_*'        # count vfs calls on CPU 1 only
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("funccount", "Count functions, tracepoints, and USDT probes", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-i", "--interval", type=common.positive_int, help="summary interval, seconds")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument(
        "-r", "--regexp", action="store_true", help='use regular expressions. Default is "*" wildcards only.'
    )
    p.add_argument(
        "-D", "--debug", action="store_true", help="print BPF program before starting (for debugging purposes)"
    )
    p.add_argument("-c", "--cpu", type=int, help="trace this CPU only")
    p.add_argument("pattern", help="search expression for events")
    return p


def bpf_text(args: argparse.Namespace, names: Sequence[str]) -> str:
    """The C for these options and the pattern's targets (pure)."""
    pattern = parse_pattern(args.pattern, args.regexp)
    return counting.program(pattern, names, tgid=args.pid, cpu=args.cpu)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("funccount", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    names, b = counting.start(args, bpf_text)
    if b is None:
        return 0
    print('Tracing %d functions for "%s"... Hit Ctrl-C to end.' % (len(names), args.pattern), flush=True)
    interval, count = counting.schedule(args.interval, args.duration)
    counts = b["counts"]
    with b:
        for last in counting.outputs(interval, count):
            print()
            if args.timestamp:
                print("%-8s" % common.strftime_now())
            print("%-36s %8s" % ("FUNC", "COUNT"))
            values = sorted(((int(v.value), int(k.value)) for k, v in counts.items()), key=lambda kv: kv[0])
            for value, index in values:
                if value and index < len(names):
                    print("%-36s %8d" % (names[index], value))
            counts.clear()
            if last:
                print("Detaching...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
