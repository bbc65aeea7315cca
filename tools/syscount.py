#!/usr/bin/env python3
"""syscount: summarize syscall counts and latencies, by syscall or by process."""

from __future__ import annotations

import argparse
import errno
import itertools
import math
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common
from rbcc.export import Counter, Label, Program
from rbcc.syscall import syscall_name, syscalls
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool syscount                 # count syscalls until Ctrl-C, top 10
    rbcc tool syscount -P              # count by process instead of by syscall
    rbcc tool syscount -L              # add the time spent in each syscall
    rbcc tool syscount -L -m           # ... in milliseconds
    rbcc tool syscount -p 181          # only trace PID 181
    rbcc tool syscount -c 181          # only trace children of PID 181
    rbcc tool syscount -i 1 -d 10      # print every second, for 10 seconds
    rbcc tool syscount -x              # only failed syscalls
    rbcc tool syscount -e ENOENT       # only syscalls that fail with ENOENT
    rbcc tool syscount --syscall read  # only the read syscall
    rbcc tool syscount -l              # list the syscalls this machine knows
"""

# Every syscall passes the raw_syscalls tracepoints: sys_exit counts (and, under -L, times from the
# sys_enter stamp) per syscall number or per process, filtered in the kernel as the options ask.
BPF_TEXT = r"""
#include <linux/sched.h>

#ifdef LATENCY
struct data_t {
    u64 count;
    u64 total_ns;
};

BPF_HASH(start, u64, u64);
BPF_HASH(data, u32, struct data_t);
#else
BPF_HASH(data, u32, u64);
#endif

static __always_inline int skip_task(long id) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
#ifdef FILTER_SYSCALL_NR
    if (id != FILTER_SYSCALL_NR)
        return 1;
#endif
#ifdef FILTER_PID
    if (pid != FILTER_PID)
        return 1;
#endif
#ifdef FILTER_TID
    if (tid != FILTER_TID)
        return 1;
#endif
#ifdef FILTER_PPID
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (task->real_parent->tgid != FILTER_PPID)
        return 1;
#endif
    return 0;
}

#ifdef LATENCY
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    if (skip_task(args->id))
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u64 t = bpf_ktime_get_ns();
    start.update(&pid_tgid, &t);
    return 0;
}
#endif

TRACEPOINT_PROBE(raw_syscalls, sys_exit) {
    if (skip_task(args->id))
        return 0;
#ifdef FILTER_FAILED
    if (args->ret >= 0)
        return 0;
#endif
#ifdef FILTER_ERRNO
    if (args->ret != -FILTER_ERRNO)
        return 0;
#endif
    u64 pid_tgid = bpf_get_current_pid_tgid();
#ifdef BY_PROCESS
    u32 key = pid_tgid >> 32;
#else
    u32 key = args->id;
#endif
#ifdef LATENCY
    u64 *start_ns = start.lookup(&pid_tgid);
    if (!start_ns)
        return 0;
    u64 delta = bpf_ktime_get_ns() - *start_ns;
    start.delete(&pid_tgid);
    struct data_t zero = {};
    struct data_t *val = data.lookup_or_try_init(&key, &zero);
    if (val) {
        lock_xadd(&val->count, 1);
        lock_xadd(&val->total_ns, delta);
    }
#else
    u64 zero = 0;
    u64 *val = data.lookup_or_try_init(&key, &zero);
    if (val)
        lock_xadd(val, 1);
#endif
    return 0;
}
"""

NO_KEY = 0xFFFFFFFF  # sys_exit with syscall id -1 (a syscall-less return): bcc leaves it out


def errno_value(text: str) -> int:
    """bcc's -e: a number or an errno name (EPERM)."""
    try:
        return abs(int(text))
    except ValueError:
        pass
    value = getattr(errno, text, None)
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"couldn't map {text} to an errno")
    return value


def syscall_number(name: str) -> int | None:
    """The number of syscall ``name`` on this machine, or None."""
    wanted = name.encode()
    return next((nr for nr, n in syscalls.items() if n == wanted), None)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("syscount", "Summarize syscall counts and latencies.", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="trace only this pid")
    p.add_argument("-t", "--tid", type=int, help="trace only this tid")
    p.add_argument("-c", "--ppid", type=int, help="trace only child of this pid")
    p.add_argument("-i", "--interval", type=common.positive_int, help="print summary at this interval (seconds)")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace, in seconds")
    p.add_argument("-T", "--top", type=int, default=10, help="print only the top syscalls by count or latency")
    p.add_argument("-x", "--failures", action="store_true", help="trace only failed syscalls (return < 0)")
    p.add_argument(
        "-e", "--errno", type=errno_value, help="trace only syscalls that return this error (numeric or EPERM, etc.)"
    )
    p.add_argument("-L", "--latency", action="store_true", help="collect syscall latency")
    p.add_argument(
        "-m", "--milliseconds", action="store_true", help="display latency in milliseconds (default: microseconds)"
    )
    p.add_argument("-P", "--process", action="store_true", help="count by process and not by syscall")
    p.add_argument("-l", "--list", action="store_true", help="print list of recognized syscalls and exit")
    p.add_argument("--syscall", help="trace this syscall only (use option -l to get all recognized syscalls)")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed). A PID trumps a TID, which trumps a PPID."""
    defines = []
    if args.pid is not None:
        defines.append(f"FILTER_PID {args.pid}")
    elif args.tid is not None:
        defines.append(f"FILTER_TID {args.tid}")
    elif args.ppid is not None:
        defines.append(f"FILTER_PPID {args.ppid}")
    if args.failures:
        defines.append("FILTER_FAILED")
    if args.errno:
        defines.append(f"FILTER_ERRNO {abs(args.errno)}")
    if args.latency:
        defines.append("LATENCY")
    if args.process:
        defines.append("BY_PROCESS")
    if args.syscall is not None:
        nr = syscall_number(args.syscall)
        defines.append(f"FILTER_SYSCALL_NR {nr if nr is not None else -1}")
    return "".join(f"#define {d}\n" for d in defines) + BPF_TEXT


def _export_syscall(nr: int) -> str | None:
    return None if nr == NO_KEY else syscall_name(nr).decode()


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool syscount``: syscalls by name (by process under -P), and under -L the time
    spent in them."""
    labels = (Label("pid"),) if args.process else (Label("syscall", "", _export_syscall),)
    calls = Counter("data", "rbcc_syscount_calls", "Syscalls made", labels, value="count" if args.latency else "")
    if not args.latency:
        return Program("syscount", bpf_text(args), metrics=(calls,))
    spent = Counter("data", "rbcc_syscount_seconds", "Time in syscalls", labels, value="total_ns", scale=1e-9)
    return Program("syscount", bpf_text(args), metrics=(calls, spent))


def print_list() -> None:
    """bcc's -l: the known syscall names, sorted, four to a line."""
    names = sorted(syscalls.values())
    for group in itertools.zip_longest(*[iter(names)] * 4):
        print("   ".join("%-22s" % n.decode() for n in group if n is not None))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.syscall is not None and syscall_number(args.syscall) is None:
        print(f"syscount: syscall '{args.syscall}' not found (-l lists them)", file=sys.stderr)
        return 1
    if args.list:
        return common.guard("syscount", print_list)
    return common.guard("syscount", lambda: run(args))


def _comm(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip()
    except OSError:
        return b"[unknown]"


def print_stats(b: BPF, args: argparse.Namespace) -> None:
    data = b["data"]
    agg = "PID    COMM" if args.process else "SYSCALL"
    print("[%s]" % common.strftime_now())

    def label(key: int) -> bytes:
        return b"%-6d %-15s" % (key, _comm(key)) if args.process else syscall_name(key)

    items = [(k.value, v) for k, v in data.items() if k.value != NO_KEY]
    if args.latency:
        print("%-22s %8s %16s" % (agg, "COUNT", "TIME (ms)" if args.milliseconds else "TIME (us)"))
        fmt = b"%-22s %8d " + (b"%16.6f" if args.milliseconds else b"%16.3f")
        scale = 1e6 if args.milliseconds else 1e3
        for key, v in sorted(items, key=lambda kv: -kv[1].total_ns)[: args.top]:
            printb(fmt % (label(key), v.count, v.total_ns / scale))
    else:
        print("%-22s %8s" % (agg, "COUNT"))
        for key, v in sorted(items, key=lambda kv: -kv[1].value)[: args.top]:
            printb(b"%-22s %8d" % (label(key), v.value))
    print("", flush=True)
    data.clear()


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    failed = "failed " if args.failures else ""
    if args.syscall is not None:
        print("Tracing %ssyscall '%s'... Ctrl+C to quit." % (failed, args.syscall), flush=True)
    else:
        print("Tracing %ssyscalls, printing top %d... Ctrl+C to quit." % (failed, args.top), flush=True)
    interval = args.interval or args.duration or 99999999
    count = math.ceil(args.duration / interval) if args.duration else None
    with b:
        for last in common.intervals(interval, count):
            print_stats(b, args)
            if last:
                break
    print("Detaching...", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
