#!/usr/bin/env python3
"""stackcount: count events (functions, tracepoints, USDT probes matching a pattern) by stack trace.

Kernel functions (``submit_bio``, ``p::name``) need kprobes; where the kernel has none, stackcount says
so in one line: count the stacks of tracepoints (``t:sched:sched_switch``) or user functions instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._specs.pattern import parse_pattern
from rbcc._tools import common, counting, pictures

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc stackcount submit_bio         # count kernel stack traces for submit_bio
    rbcc stackcount -d ip_output       # include a user/kernel stack delimiter
    rbcc stackcount -s ip_output       # show symbol offsets
    rbcc stackcount -sv ip_output      # show offsets and raw addresses (verbose)
    rbcc stackcount 'tcp_send*'        # count stacks for funcs matching tcp_send*
    rbcc stackcount -r '^tcp_send.*'   # same as above, using regular expressions
    rbcc stackcount -Ti 5 ip_output    # output every 5 seconds, with timestamps
    rbcc stackcount -p 185 ip_output   # count ip_output stacks for PID 185 only
    rbcc stackcount -c 1 put_prev_entity   # count put_prev_entity stacks for CPU 1 only
    rbcc stackcount -p 185 c:malloc    # count stacks for malloc in PID 185
    rbcc stackcount t:sched:sched_fork # count stacks for sched_fork tracepoint
    rbcc stackcount -p 185 u:node:*    # count stacks for all USDT probes in node
    rbcc stackcount -K t:sched:sched_switch   # kernel stacks only
    rbcc stackcount -U t:sched:sched_switch   # user stacks only
    rbcc stackcount --svg sw.svg -D 5 t:sched:sched_switch   # 5 seconds, drawn as a flame graph
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("stackcount", "Count events and their stack traces", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-c", "--cpu", type=int, help="trace this CPU only")
    p.add_argument("-i", "--interval", type=common.positive_int, help="summary interval, seconds")
    p.add_argument("-D", "--duration", type=common.positive_int, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument(
        "-r", "--regexp", action="store_true", help='use regular expressions. Default is "*" wildcards only.'
    )
    p.add_argument("-s", "--offset", action="store_true", help="show address offsets")
    p.add_argument("-P", "--perpid", action="store_true", help="display stacks separately for each process")
    p.add_argument("-K", "--kernel-stacks-only", action="store_true", help="kernel stack only")
    p.add_argument("-U", "--user-stacks-only", action="store_true", help="user stack only")
    p.add_argument("-v", "--verbose", action="store_true", help="show raw addresses")
    p.add_argument("-d", "--delimited", action="store_true", help="insert delimiter between kernel/user stacks")
    p.add_argument("-f", "--folded", action="store_true", help="output folded format")
    p.add_argument("--debug", action="store_true", help="print BPF program before starting (for debugging purposes)")
    p.add_argument("pattern", help="search expression for events")
    pictures.add_svg(p)
    return p


def _stacks(args: argparse.Namespace) -> tuple[bool, bool]:
    """(kernel, user): both unless -K or -U says one."""
    if not args.kernel_stacks_only and not args.user_stacks_only:
        return True, True
    return args.kernel_stacks_only, args.user_stacks_only


def bpf_text(args: argparse.Namespace, names: Sequence[str]) -> str:
    """The C for these options and the pattern's targets (pure)."""
    pattern = parse_pattern(args.pattern, args.regexp)
    kernel, user = _stacks(args)
    # a user address means something only in its own process: user stacks, and a user probe's, are
    # counted per process, to be symbolized there; -P asks the same of kernel stacks
    per_pid = args.perpid or user or not pattern.is_kernel
    return counting.program(
        pattern, names, tgid=args.pid, cpu=args.cpu, kernel_stack=kernel, user_stack=user, per_pid=per_pid
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.kernel_stacks_only and args.user_stacks_only:
        print("ERROR: -K and -U are mutually exclusive. If you want both stacks, that is the default.")
        return 1
    return common.guard("stackcount", lambda: run(args))


def _frame(args: argparse.Namespace, addr: int, sym: bytes) -> str:
    return "  " + ("%-16x " % addr if args.verbose else "") + sym.decode("utf-8", "replace")


def run(args: argparse.Namespace) -> int:
    names, b = counting.start(args, bpf_text)
    if b is None:
        return 0
    if not args.folded:
        print('Tracing %d functions for "%s"... Hit Ctrl-C to end.' % (len(names), args.pattern), flush=True)
    need_delimiter = args.delimited and not (args.kernel_stacks_only or args.user_stacks_only)
    interval, count = counting.schedule(args.interval, args.duration)
    both = not (args.kernel_stacks_only or args.user_stacks_only)
    svg = pictures.flame_sink(args, "stackcount", title="Stack Count Flame Graph", count_name="calls")
    with b:
        counts = b["counts"]
        stack_traces = b["stack_traces"]
        for last in counting.outputs(interval, count):
            if not args.folded:
                print()
            if args.timestamp:
                print("%-8s" % common.strftime_now())
            for k, v in sorted(counts.items(), key=lambda kv: kv[1].value):
                user = [] if k.user_stack_id < 0 else list(stack_traces.walk(k.user_stack_id))
                kernel = [] if k.kernel_stack_id < 0 else list(stack_traces.walk(k.kernel_stack_id))
                if args.folded or svg is not None:
                    usyms = [b.sym(a, k.tgid).decode("utf-8", "replace") for a in reversed(user)]
                    ksyms = [b.ksym(a).decode("utf-8", "replace") for a in reversed(kernel)]
                    name = k.name.decode("utf-8", "replace")
                    delimiter = ["-"] if need_delimiter else []
                    if svg is not None:
                        svg.add([name, *usyms, *delimiter, *(pictures.annotated(ksyms) if both else ksyms)], v.value)
                if args.folded:
                    print("%s %d" % (";".join([name, *usyms, *delimiter, *ksyms]), v.value))
                    continue
                for addr in kernel:
                    print(_frame(args, addr, b.ksym(addr, show_offset=args.offset)))
                if need_delimiter:
                    print("    --")
                for addr in user:
                    print(_frame(args, addr, b.sym(addr, k.tgid, show_offset=args.offset)))
                if not args.pid and k.tgid != 0xFFFFFFFF:
                    print("    %s [%d]" % (k.name.decode("utf-8", "replace"), k.tgid))
                print("    %d\n" % v.value)
            sys.stdout.flush()
            counts.clear()
            if last and not args.folded:
                print("Detaching...")
    if svg is not None:
        svg.write(f'"{args.pattern}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
