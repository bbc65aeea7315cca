#!/usr/bin/env python3
"""argdist: summarize a function's parameter values (or a tracepoint's fields) as histograms or counts.

Probe specs as bcc's argdist takes them (``rbcc argdist -h``), parsed by rbcc._specs. Kernel-function
probes (``p::``/``r::``) need kprobes; where the kernel has none, argdist says so in one line — use a
tracepoint (``t:category:event():type:args->field``) instead.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence

from rbcc._specs.argdist import ArgdistSpec, parse_argdist
from rbcc._specs.sessions import ArgdistSession
from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """
Probe specifier syntax:
        {p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...][:filter]][#label]
Where:
        p,r,t,u    -- probe at function entry, function exit, kernel
                      tracepoint, or USDT probe
                      in exit probes: can use $retval, $entry(param), $latency
        library    -- the library that contains the function
                      (leave empty for kernel functions)
        category   -- the category of the kernel tracepoint (e.g. net, sched)
        function   -- the function name to trace (or tracepoint name)
        signature  -- the function's parameters, as in the C header
        type       -- the type of the expression to collect (supports multiple)
        expr       -- the expression to collect (supports multiple)
        filter     -- the filter that is applied to collected values
        label      -- the label for this probe in the resulting output

EXAMPLES:

rbcc argdist -H 'p::__kmalloc(u64 size):u64:size'
        Print a histogram of allocation sizes passed to kmalloc
rbcc argdist -p 1005 -C 'p:c:malloc(size_t size):size_t:size:size==16'
        Print a frequency count of how many times process 1005 called malloc with an allocation size of 16 bytes
rbcc argdist -C 'r:c:gets():char*:(char*)$retval#snooped strings'
        Snoop on all strings returned by gets()
rbcc argdist -H 'r::__kmalloc(size_t size):u64:$latency/$entry(size)#ns per byte'
        Print a histogram of nanoseconds per byte from kmalloc allocations
rbcc argdist -p 1005 -C 'p:c:write(int fd):int:fd' -T 5
        Print frequency counts of the file descriptors process 1005 writes to, only the top 5
rbcc argdist -p 1005 -H 'r:c:read()'
        Print a histogram of results (sizes) returned by read() in process 1005
rbcc argdist -C 'r::__vfs_read():u32:$PID:$latency > 100000'
        Print frequency of reads by process where the latency was >0.1ms
rbcc argdist -H 'p:c:write(int fd, const void *buf, size_t count):size_t:count:fd==1'
        Print a histogram of buffer sizes passed to write() across all processes, where the fd was 1 (STDOUT)
rbcc argdist -C 'p:c:fork()#fork calls'
        Count fork() calls in libc across all processes
rbcc argdist -H 't:syscalls:sys_enter_read():u64:args->count'
        Print a histogram of the sizes read() is asked for (at the syscall tracepoint)
rbcc argdist -C 't:syscalls:sys_enter_write():int:args->fd'
        Count write() calls per file descriptor
rbcc argdist -C 't:irq:irq_handler_entry():int:args->irq'
        Aggregate interrupts by interrupt request (IRQ)
rbcc argdist -C 'u:pthread:pthread_start():u64:arg2' -p 1337
        Print frequency of function addresses used as a pthread start function (USDT probe, process 1337)
rbcc argdist -p 2780 -z 120 -C 'p:c:write(int fd, char* buf, size_t len):char*:buf:fd==1'
        Spy on writes to STDOUT performed by process 2780, up to a string size of 120 characters
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("argdist", "Trace a function and display a summary of its parameter values.", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="id of the process to trace (optional)")
    p.add_argument("-t", "--tid", type=int, help="id of the thread to trace (optional)")
    p.add_argument(
        "-z",
        "--string-size",
        type=common.positive_int,
        default=80,
        help="maximum string size to read from char* arguments",
    )
    p.add_argument(
        "-i", "--interval", type=common.positive_int, default=1, help="output interval, in seconds (default 1 second)"
    )
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace, in seconds")
    p.add_argument("-n", "--number", type=common.positive_int, dest="count", help="number of outputs")
    p.add_argument("-v", "--verbose", action="store_true", help="print resulting BPF program code before executing")
    p.add_argument(
        "-c", "--cumulative", action="store_true", help="do not clear histograms and freq counts at each interval"
    )
    p.add_argument(
        "-T", "--top", type=common.positive_int, help="number of top results to show (not applicable to histograms)"
    )
    p.add_argument(
        "-H", "--histogram", action="append", dest="histspecifier", metavar="specifier",
        help="probe specifier to capture histogram of (see examples below)",
    )  # fmt: skip
    p.add_argument(
        "-C", "--count", action="append", dest="countspecifier", metavar="specifier",
        help="probe specifier to capture count of (see examples below)",
    )  # fmt: skip
    p.add_argument(
        "-I", "--include", action="append", metavar="header",
        help="additional header files to include in the BPF program as either full path, or relative to "
        "current working directory, or relative to default kernel header search path",
    )  # fmt: skip
    return p


def specs(args: argparse.Namespace) -> list[ArgdistSpec]:
    return [parse_argdist(s, "freq") for s in args.countspecifier or ()] + [
        parse_argdist(s, "hist") for s in args.histspecifier or ()
    ]


def session(args: argparse.Namespace) -> ArgdistSession:
    return ArgdistSession(
        specs(args), string_size=args.string_size, pid=args.pid, tid=args.tid, includes=args.include or ()
    )


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options and probes (pure)."""
    return session(args).text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.countspecifier and not args.histspecifier:
        print("at least one specifier is required")
        return 1
    return common.guard("argdist", lambda: run(args))


def _expr(spec: ArgdistSpec, i: int) -> str:
    return re.sub(r"\s+", " ", spec.exprs[i].text)


def _key(spec: ArgdistSpec, key: object) -> str:
    if spec.default_expr:
        return "total calls" if spec.point.kind != "r" else "retval = %s" % key
    values = key if isinstance(key, tuple) else (key,)
    return ", ".join("%s = %s" % (_expr(spec, i), v) for i, v in enumerate(values))


def run(args: argparse.Namespace) -> int:
    s = session(args)
    if args.verbose or args.ebpf:
        print(s.text)
        if args.ebpf:
            return 0
    b = s.load()
    outputs = 0
    seconds = 0
    with b:
        while True:
            try:
                time.sleep(args.interval)
            except KeyboardInterrupt:
                return 0
            seconds += args.interval
            print("[%s]" % common.strftime_now())
            for probe in s.probes:
                spec = probe.spec
                if spec.kind == "hist":
                    label = spec.label or ("retval" if spec.default_expr else _expr(spec, 0))
                    s.table(probe).print_log2_hist(val_type=label)
                    if not args.cumulative:
                        s.table(probe).clear()
                    continue
                data = s.collect(probe, clear=not args.cumulative)
                print(spec.title)
                print("\t%-10s %s" % ("COUNT", "EVENT"))
                rows = sorted(data.items(), key=lambda kv: kv[1])
                if args.top is not None:
                    rows = rows[-args.top :]
                for key, value in rows:
                    print("\t%-10s %s" % (value, _key(spec, key)))
            sys.stdout.flush()
            outputs += 1
            if args.count is not None and outputs >= args.count:
                return 0
            if args.duration and seconds >= args.duration:
                return 0


if __name__ == "__main__":
    sys.exit(main())
