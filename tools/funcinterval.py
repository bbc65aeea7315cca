#!/usr/bin/env python3
"""funcinterval: time the interval between calls of a function, tracepoint or USDT probe, as a histogram.

The pattern is bcc's: ``func`` a kernel function (kprobes: where the kernel has none, funcinterval says
so in one line and names the tracepoint form), ``library:func`` a user function (uprobes), ``t:cat:event``
a tracepoint, and also ``u:library:probe`` a USDT probe; ``*`` wildcards match several, whose calls then
count as one stream. The interval is between consecutive calls of any thread (of -p PID's threads).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF, USDT
from rbcc._specs.pattern import PatternSpec, parse_pattern
from rbcc._tools import common, counting, funcs

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    # time the interval of do_sys_open()
    rbcc tool funcinterval do_sys_open
    # time the interval of xhci_ring_ep_doorbell(), in microseconds
    rbcc tool funcinterval -u xhci_ring_ep_doorbell
    # time the interval of do_nanosleep(), in milliseconds
    rbcc tool funcinterval -m do_nanosleep
    # output every 5 seconds, with timestamps
    rbcc tool funcinterval -mTi 5 vfs_read
    # time process 181 only
    rbcc tool funcinterval -p 181 vfs_read
    # time the interval of mm_vmscan_direct_reclaim_begin tracepoint
    rbcc tool funcinterval t:vmscan:mm_vmscan_direct_reclaim_begin
    # time the interval of c:malloc used by top every 3 seconds
    rbcc tool funcinterval -p `pidof -s top` -i 3 c:malloc
    # time /usr/local/bin/python main function
    rbcc tool funcinterval /usr/local/bin/python:main
    # time the interval of a USDT probe
    rbcc tool funcinterval -m u:/usr/lib/postgresql/15/bin/postgres:query__start
"""

BPF_TEXT = r"""
BPF_HASH(start, u32, u64, 1);
BPF_HISTOGRAM(dist);

int trace_func_entry(struct pt_regs *ctx)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32, any = 0;
    if (FILTER)
        return 0;
    u64 now = bpf_ktime_get_ns();
    u64 *last = start.lookup(&any);
    if (last != 0) {
        u64 delta = now - *last;
        FACTOR
        dist.atomic_increment(bpf_log2l(delta));
    }
    start.update(&any, &now);
    return 0;
}
"""

KINDS = {"t": "tracepoint", "u": "USDT probe"}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("funcinterval", "Time interval and print latency as a histogram", EXAMPLES)
    funcs.add_histogram_options(p)
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program (for debugging purposes)")
    p.add_argument("pattern", help="Function/Tracepoint name for tracing")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure)."""
    return BPF_TEXT.replace("FACTOR", funcs.scale_c(args)).replace("FILTER", common.pid_condition("tgid", args.pid))


def attach_type(pattern: PatternSpec) -> str:
    return KINDS.get(pattern.kind) or ("uprobe function" if pattern.library else "kprobe function")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("funcinterval", lambda: run(args))


def load(args: argparse.Namespace, pattern: PatternSpec, names: Sequence[str], text: str) -> BPF:
    fn = "trace_func_entry"
    usdt = None
    if pattern.kind == "u":
        usdt = USDT(path=pattern.library, pid=args.pid)
        for name in names:
            usdt.enable_probe(name, fn)
    b = BPF(text=text, usdt_contexts=[usdt] if usdt else [])
    try:
        for name in names:
            if pattern.kind == "t":
                b.attach_tracepoint(tp=name, fn_name=fn)
            elif pattern.kind == "p" and pattern.library:
                b.attach_uprobe(name=pattern.library, sym=name, fn_name=fn, pid=args.pid or -1)
            elif pattern.kind == "p":
                b.attach_kprobe(event=name, fn_name=fn)
    except BaseException:
        b.cleanup()
        raise
    return b


def run(args: argparse.Namespace) -> int:
    pattern = parse_pattern(args.pattern)
    text = bpf_text(args)
    if funcs.printed_only(
        args,
        text,
        pattern,
        "time the interval of a tracepoint instead: funcinterval t:CATEGORY:EVENT (t:syscalls:sys_enter_NAME)",
    ):
        return 0
    names = counting.targets(pattern, args.pid)
    b = load(args, pattern, names, text)
    print('Tracing %s for "%s"... Hit Ctrl-C to end.' % (attach_type(pattern), pattern.pattern), flush=True)
    label = funcs.units(args)[0]
    with b:
        dist = b["dist"]
        funcs.print_histograms(args, lambda: dist.print_log2_hist(label), (dist, b["start"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
