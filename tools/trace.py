#!/usr/bin/env python3
"""trace: attach to functions, tracepoints and USDT probes and print a message per event.

Probe specs as bcc's trace takes them (``rbcc trace -h``), parsed by rbcc._specs. Kernel-function
probes (``p::``/``r::``) need kprobes; where the kernel has none, trace says so in one line — use a
tracepoint (``t:category:event``) instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence

from rbcc._specs.gen import TraceOptions
from rbcc._specs.sessions import Event, TraceSession
from rbcc._specs.trace import parse_trace
from rbcc._tools import common, pictures

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """EXAMPLES:

rbcc trace do_sys_open
        Trace the open syscall and print a default trace message when entered
rbcc trace kfree_skb+0x12
        Trace the kfree_skb kernel function after the instruction on the 0x12 offset
rbcc trace 'do_sys_open "%s", arg2@user'
        Trace the open syscall and print the filename being opened; @user reads arg2 from user memory
rbcc trace 'do_sys_open "%s", arg2@user' -n main
        Trace the open syscall and only print events of processes whose names contain "main"
rbcc trace 'do_sys_open "%s", arg2@user' --uid 1001
        Trace the open syscall and only print events of processes with user ID 1001
rbcc trace 'do_sys_open "%s", arg2@user' -f config
        Trace the open syscall and print the filenames being opened that contain "config"
rbcc trace 'sys_read (arg3 > 20000) "read %d bytes", arg3'
        Trace the read syscall and print a message for reads >20000 bytes
rbcc trace 'r::do_sys_open "%llx", retval'
        Trace the return from the open syscall and print the return value
rbcc trace 'c:open (arg2 == 42) "%s %d", arg1, arg2'
        Trace the open() call from libc only if the flags (arg2) argument is 42
rbcc trace 'c:malloc "size = %d", arg1'
        Trace malloc calls and print the size being allocated
rbcc trace 'p:c:write (arg1 == 1) "writing %d bytes to STDOUT", arg3'
        Trace the write() call from libc to monitor writes to STDOUT
rbcc trace 'r::__kmalloc (retval == 0) "kmalloc failed!"'
        Trace returns from __kmalloc which returned a null pointer
rbcc trace 'r:c:malloc (retval) "allocated = %x", retval'
        Trace returns from malloc and print non-NULL allocated buffers
rbcc trace 't:block:block_rq_complete "sectors=%d", args->nr_sector'
        Trace the block_rq_complete kernel tracepoint and print # of tx sectors
rbcc trace 't:syscalls:sys_enter_openat "%s", args->filename'
        Trace openat() at its syscall tracepoint and print the file name (read from user memory)
rbcc trace 'u:pthread:pthread_create (arg4 != 0)'
        Trace the USDT probe pthread_create when its 4th argument is non-zero
rbcc trace 'u:pthread:libpthread:pthread_create (arg4 != 0)'
        Ditto, but the provider name "libpthread" is specified.
rbcc trace 'p::SyS_nanosleep(struct timespec *ts) "sleep for %lld ns", ts->tv_nsec'
        Trace the nanosleep syscall and print the sleep duration in ns
rbcc trace -c /sys/fs/cgroup/system.slice/workload.service '__x64_sys_nanosleep' '__x64_sys_clone'
        Trace nanosleep/clone syscall calls only under the workload.service cgroup hierarchy
rbcc trace -I 'linux/fs_struct.h' 'mntns_install "users = %d", $task->fs->users'
        Trace the number of users accessing the file system of the current task
rbcc trace 'p:c:inet_pton' -U
        Trace inet_pton calls with their user stacks
rbcc trace -K --svg switch.svg 't:sched:sched_switch'
        Trace context switches with their kernel stacks, and draw the stacks as a flame graph at the end
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("trace", "Attach to functions and print trace messages.", EXAMPLES)
    p.add_argument(
        "-b",
        "--buffer-pages",
        type=common.positive_int,
        default=64,
        help="number of pages to use for perf_events ring buffer (default: %(default)d)",
    )
    p.add_argument("-p", "--pid", type=int, metavar="PID", dest="tgid", help="id of the process to trace (optional)")
    p.add_argument("-L", "--tid", type=int, metavar="TID", dest="pid", help="id of the thread to trace (optional)")
    p.add_argument("--uid", type=int, metavar="UID", help="id of the user to trace (optional)")
    p.add_argument("-v", "--verbose", action="store_true", help="print resulting BPF program code before executing")
    p.add_argument(
        "-Z", "--string-size", type=common.positive_int, default=80, help="maximum size to read from strings"
    )
    p.add_argument("-S", "--include-self", action="store_true", help="do not filter trace's own pid from the trace")
    p.add_argument("-M", "--max-events", type=common.positive_int, help="number of events to print before quitting")
    p.add_argument("-t", "--timestamp", action="store_true", help="print timestamp column (offset from trace start)")
    p.add_argument(
        "-u",
        "--unix-timestamp",
        action="store_true",
        help="print UNIX timestamp instead of offset from trace start, requires -t",
    )
    p.add_argument("-T", "--time", action="store_true", help="print time column")
    p.add_argument("-C", "--print_cpu", action="store_true", help="print CPU id")
    p.add_argument("-c", "--cgroup-path", metavar="CGROUP_PATH", help="cgroup path")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-f", "--msg-filter", help="only print the msg of event containing this string")
    p.add_argument("-B", "--bin_cmp", action="store_true", help="allow to use STRCMP with binary values")
    p.add_argument(
        "-s",
        "--sym_file_list",
        help="comma separated list of symbol files to use for symbol resolution (accepted; symbols come from "
        "the running processes' mappings)",
    )
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-a", "--address", action="store_true", help="print virtual address in stacks")
    p.add_argument(
        "-I",
        "--include",
        action="append",
        metavar="header",
        help="additional header files to include in the BPF program as either full path, or relative to "
        "current working directory, or relative to default kernel header search path",
    )
    p.add_argument("-A", "--aggregate", action="store_true", help="aggregate amount of each trace")
    p.add_argument("probes", metavar="probe", nargs="+", help="probe specifier (see examples)")
    pictures.add_svg(p)
    return p


def options(args: argparse.Namespace) -> TraceOptions:
    return TraceOptions(
        string_size=args.string_size,
        tgid=args.tgid,
        tid=args.pid,
        uid=args.uid,
        exclude_tgid=None if args.include_self else os.getpid(),
        kernel_stack=args.kernel_stack,
        user_stack=args.user_stack,
        cgroup=args.cgroup_path is not None,
        includes=tuple(args.include or ()),
        bin_cmp=args.bin_cmp,
    )


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options and probes (pure: no kernel needed, but tracepoint field types)."""
    return TraceSession([parse_trace(s) for s in args.probes], options(args)).text


def main(argv: Sequence[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.tgid and args.pid:
        p.error("only one of -p and -L may be specified")
    if args.aggregate and args.max_events is None:
        p.error("-M/--max-events should be specified with -A/--aggregate")
    if args.svg and not (args.kernel_stack or args.user_stack):
        p.error("--svg draws the events' stacks: it needs -K or -U")
    return common.guard("trace", lambda: run(args))


def _stack_lines(frames: list[tuple[int, str]], address: bool) -> str:
    return "".join("        " + ("%16x " % addr if address else "") + sym + "\n" for addr, sym in frames)


def format_event(args: argparse.Namespace, e: Event) -> str:
    """One event as trace prints it (with its stacks, if asked for)."""
    out = ""
    if args.timestamp or args.time:
        if not args.timestamp:
            stamp = time.strftime("%H:%M:%S")
        elif args.unix_timestamp:
            stamp = "%.6f" % e["time"]
        else:
            stamp = "%.6f" % e["timestamp"]
        out += "%-17s " % stamp[:17] if args.unix_timestamp else "%-8s " % stamp[:8]
    if args.print_cpu:
        out += "%-3s " % e["cpu"]
    out += "%-7d %-7d %-15s %-16s %s\n" % (e["pid"], e["tid"], e["comm"], e["function"], e["message"])
    if args.kernel_stack:
        out += _stack_lines(e["kernel_stack"], args.address) or "        -1\n"
    if args.user_stack:
        out += _stack_lines(e["user_stack"], args.address) or "        -1\n"
    return out


# what trace prints after a symbol: its offset and its module ("do_sys_openat2+0x9a [kernel]")
SYMBOL_TAIL = re.compile(r"(\+0x[0-9a-f]+)?( \[[^\]]*\])?$")


def _function(sym: str) -> str:
    """The function of a printed frame: a flame graph merges a function's frames, whatever the offset."""
    return SYMBOL_TAIL.sub("", sym) or sym


def folded_event(args: argparse.Namespace, e: Event) -> list[str]:
    """An event's stack as a flame graph's frames: its process name, then user frames and kernel
    frames outermost first (kernel ones ``_[k]``-annotated when both are shown, for the colours)."""
    user = [_function(sym) for _, sym in reversed(e["user_stack"])] if args.user_stack else []
    kernel = [_function(sym) for _, sym in reversed(e["kernel_stack"])] if args.kernel_stack else []
    return [e["comm"], *user, *(pictures.annotated(kernel) if args.user_stack else kernel)]


def run(args: argparse.Namespace) -> int:
    session = TraceSession([parse_trace(s) for s in args.probes], options(args), page_cnt=args.buffer_pages)
    if args.verbose or args.ebpf:
        print(session.text)
        if args.ebpf:
            return 0
    b = session.load()
    if args.cgroup_path is not None:
        b.get_table("__cgroup")[0] = args.cgroup_path
    counted = 0
    aggregate: dict[str, int] = {}
    done = False
    svg = pictures.flame_sink(args, "trace", title="Trace Stacks Flame Graph", count_name="events")

    def on_event(e: Event) -> None:
        nonlocal counted, done
        if done or (args.name and args.name not in e["comm"]):
            return
        if args.msg_filter and args.msg_filter not in e["message"]:
            return
        text = format_event(args, e)
        if svg is not None:
            svg.add(folded_event(args, e), 1)
        if args.aggregate:
            aggregate[text] = aggregate.get(text, 0) + 1
        else:
            sys.stdout.write(text + ("\n" if args.kernel_stack or args.user_stack else ""))
        counted += 1
        if args.max_events is not None and counted >= args.max_events:
            done = True

    session.open(on_event)
    trivial = all(s.format is None for s in session.specs)
    header = ""
    if args.timestamp or args.time:
        header += "%-17s " % "TIME" if args.unix_timestamp else "%-8s " % "TIME"
    if args.print_cpu:
        header += "%-3s " % "CPU"
    print(header + "%-7s %-7s %-15s %-16s %s" % ("PID", "TID", "COMM", "FUNC", "" if trivial else "-"), flush=True)
    with b:
        try:
            while not done:
                b.perf_buffer_poll(100)
                sys.stdout.flush()
        finally:
            for text, n in sorted(aggregate.items(), key=lambda kv: kv[1], reverse=True):
                print("%s-->COUNT %d\n\n" % (text, n), end="")
            sys.stdout.flush()
            if svg is not None:
                svg.write(" ".join(args.probes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
