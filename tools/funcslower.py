#!/usr/bin/env python3
"""funcslower: trace slow kernel or user function calls.

Each call of the functions named is timed from its entry to its return: user functions
(``LIBRARY:FUNCTION``, ``c:open``) with a uprobe and a uretprobe, kernel functions (``vfs_write``) with a
kprobe and a kretprobe where the kernel has kprobes; where it has none, funcslower says so in one line.
A call made while another traced call of the same thread is running replaces it (only the innermost
call of nested ones is seen), as in bcc. The default threshold is 1 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._specs.pattern import PatternSpec, parse_pattern
from rbcc._tools import common, funcs
from rbcc.errors import ProbeSpecError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
  rbcc tool funcslower vfs_write        # trace vfs_write calls slower than 1ms
  rbcc tool funcslower -m 10 vfs_write  # same, but slower than 10ms
  rbcc tool funcslower -u 10 c:open     # trace open calls slower than 10us
  rbcc tool funcslower -p 135 c:open    # trace pid 135 only
  rbcc tool funcslower c:malloc c:free  # trace both malloc and free slower than 1ms
  rbcc tool funcslower -a 2 c:open      # show first two arguments to open
  rbcc tool funcslower -UK -m 10 c:open # Show user and kernel stack frame of open calls slower than 10ms
  rbcc tool funcslower -f -UK c:open    # Output in folded format for flame graphs
"""

BPF_TEXT = r"""
#define SAVED_ARGC 6

struct entry_t {
    u64 id;
    u64 start_ns;
    u64 args[SAVED_ARGC];
    int user_stack_id;
    int kernel_stack_id;
};

struct data_t {
    u64 id;
    u64 tgid_pid;
    u64 start_ns;
    u64 duration_ns;
    u64 retval;
    char comm[TASK_COMM_LEN];
    u64 args[SAVED_ARGC];
    int user_stack_id;
    int kernel_stack_id;
};

BPF_HASH(entryinfo, u64, struct entry_t);
BPF_PERF_OUTPUT(events);
STACKS

static __always_inline int on_entry(struct pt_regs *ctx, u64 id)
{
    u64 tgid_pid = bpf_get_current_pid_tgid();
    u32 tgid = tgid_pid >> 32;
    if (FILTER)
        return 0;
    struct entry_t entry = {.id = id, .user_stack_id = -1, .kernel_stack_id = -1};
    GRAB_ARGS
    USER_STACK
    KERNEL_STACK
    entry.start_ns = bpf_ktime_get_ns();  // last: the work above is not the call's
    entryinfo.update(&tgid_pid, &entry);
    return 0;
}

int trace_return(struct pt_regs *ctx)
{
    u64 tgid_pid = bpf_get_current_pid_tgid();
    struct entry_t *entry = entryinfo.lookup(&tgid_pid);
    if (entry == 0)
        return 0;  // its entry came before tracing began
    u64 delta = bpf_ktime_get_ns() - entry->start_ns;
    if (delta < DURATION_NS) {
        entryinfo.delete(&tgid_pid);
        return 0;
    }
    struct data_t data = {
        .id = entry->id,
        .tgid_pid = tgid_pid,
        .start_ns = entry->start_ns,
        .duration_ns = delta,
        .retval = PT_REGS_RC(ctx),
        .user_stack_id = entry->user_stack_id,
        .kernel_stack_id = entry->kernel_stack_id,
    };
    __builtin_memcpy(data.args, entry->args, sizeof(data.args));
    entryinfo.delete(&tgid_pid);
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""

ARGS_C = """entry.args[0] = PT_REGS_PARM1(ctx);
    entry.args[1] = PT_REGS_PARM2(ctx);
    entry.args[2] = PT_REGS_PARM3(ctx);
    entry.args[3] = PT_REGS_PARM4(ctx);
    entry.args[4] = PT_REGS_PARM5(ctx);
    entry.args[5] = PT_REGS_PARM6(ctx);"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("funcslower", "Trace slow kernel or user function calls.", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, metavar="PID", dest="tgid", help="trace this PID only")
    p.add_argument("-m", "--min-ms", type=float, dest="min_ms", help="minimum duration to trace (ms)")
    p.add_argument("-u", "--min-us", type=float, dest="min_us", help="minimum duration to trace (us)")
    p.add_argument("-a", "--arguments", type=int, help="print this many entry arguments, as hex")
    p.add_argument("-T", "--time", action="store_true", help="show HH:MM:SS timestamp")
    p.add_argument("-t", "--timestamp", action="store_true", help="show timestamp in seconds at us resolution")
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program for debugging purposes")
    p.add_argument(metavar="function", nargs="+", dest="functions", help="function(s) to trace")
    p.add_argument(
        "-f", "--folded", action="store_true", help="output folded format, one line per stack (for flame graphs)"
    )
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    return p


def duration_ns(args: argparse.Namespace) -> int:
    """The threshold: -m, else -u, else 1 ms; fractions rounded down to a nanosecond (bcc)."""
    if args.min_ms:
        return int(args.min_ms * 1000000)
    if args.min_us:
        return int(args.min_us * 1000)
    return 1000000


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure)."""
    stacks = args.user_stack or args.kernel_stack
    return (
        BPF_TEXT.replace("STACKS", "BPF_STACK_TRACE(stacks, 2048);" if stacks else "")
        .replace("GRAB_ARGS", ARGS_C if args.arguments else "")
        .replace(
            "USER_STACK", "entry.user_stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);" if args.user_stack else ""
        )
        .replace("KERNEL_STACK", "entry.kernel_stack_id = stacks.get_stackid(ctx, 0);" if args.kernel_stack else "")
        .replace("DURATION_NS", str(duration_ns(args)))
        .replace("FILTER", common.pid_condition("tgid", args.tgid))
    ) + funcs.entry_functions(len(args.functions))


def specs(args: argparse.Namespace) -> list[PatternSpec]:
    """Each function as ``[LIBRARY:]FUNCTION``: a kernel function, or one of a library or program."""
    found = []
    for text in args.functions:
        spec = parse_pattern(text)
        if spec.kind != "p" or "*" in spec.pattern:
            raise ProbeSpecError(f"{text!r}: funcslower takes [LIBRARY:]FUNCTION, one function each, no wildcards")
        found.append(spec)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("funcslower", lambda: run(args))


def attach(args: argparse.Namespace, text: str) -> BPF:
    targets = specs(args)
    for spec in targets:
        funcs.need_kernel_functions(
            spec,
            "trace user functions (LIBRARY:FUNCTION) instead, or time system calls with "
            "funclatency t:syscalls:sys_enter_NAME",
        )
    b = BPF(text=text)
    try:
        for n, spec in enumerate(targets):
            if spec.library:
                b.attach_uprobe(name=spec.library, sym=spec.pattern, fn_name=f"trace_entry_{n}", pid=args.tgid or -1)
                b.attach_uretprobe(name=spec.library, sym=spec.pattern, fn_name="trace_return", pid=args.tgid or -1)
            else:
                b.attach_kprobe(event=spec.pattern, fn_name=f"trace_entry_{n}")
                b.attach_kretprobe(event=spec.pattern, fn_name="trace_return")
    except BaseException:
        b.cleanup()
        raise
    return b


def run(args: argparse.Namespace) -> int:
    specs(args)  # a malformed function fails before anything is printed
    text = bpf_text(args)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    b = attach(args, text)
    unit = "us" if args.min_us else "ms"
    per_unit = 1000 if args.min_us else 1000000
    if not args.folded:
        print("Tracing function calls slower than %g %s... Ctrl+C to quit." % (args.min_us or args.min_ms or 1, unit))
        print(
            (("%-10s " % "TIME" if args.time or args.timestamp else "") + "%-14s %-6s %7s %16s %s")
            % ("COMM", "PID", "LAT(%s)" % unit, "RVAL", "FUNC" + (" ARGS" if args.arguments else "")),
            flush=True,
        )
    first_ns = 0

    def time_column(event: Any) -> str:
        nonlocal first_ns
        if args.time:
            return "%-10s " % time.strftime("%H:%M:%S")
        if args.timestamp:
            first_ns = first_ns or int(event.start_ns)
            return "%-10.6f " % ((int(event.start_ns) - first_ns) / 1e9)
        return ""

    def print_event(cpu: int, data: Any, size: int) -> None:
        event = b["events"].event(data)
        comm = event.comm.decode("utf-8", "replace")
        if not args.folded:
            shown = " ".join("0x%x" % a for a in list(event.args)[: args.arguments or 0])
            print(
                (time_column(event) + "%-14.14s %-6s %7.2f %16x %s %s")
                % (
                    comm,
                    int(event.tgid_pid) >> 32,
                    int(event.duration_ns) / per_unit,
                    int(event.retval),
                    args.functions[int(event.id)],
                    shown,
                )
            )
        if args.user_stack or args.kernel_stack:
            print_stack(b, args, event, comm)
        sys.stdout.flush()

    with b:
        b["events"].open_perf_buffer(print_event, page_cnt=64)
        common.poll_events(b)
    return 0


def print_stack(b: BPF, args: argparse.Namespace, event: Any, comm: str) -> None:
    """The call's stacks: kernel frames then user frames, innermost first, one a line; or with -f one
    folded line, outermost first, user frames then "-" then kernel frames."""
    stacks = b["stacks"]
    pid = int(event.tgid_pid) >> 32
    user = list(stacks.walk(event.user_stack_id)) if args.user_stack and event.user_stack_id >= 0 else []
    kernel = list(stacks.walk(event.kernel_stack_id)) if args.kernel_stack and event.kernel_stack_id >= 0 else []
    user_names = [BPF.sym(a, pid).decode("utf-8", "replace") for a in user]
    kernel_names = [BPF.ksym(a).decode("utf-8", "replace") for a in kernel]
    if args.folded:
        frames = [comm, *reversed(user_names), *(["-"] if user and kernel else []), *reversed(kernel_names)]
        print("%s %d" % (";".join(frames), 1))
        return
    for name in kernel_names + user_names:
        print("    %s" % name)


if __name__ == "__main__":
    sys.exit(main())
