#!/usr/bin/env python3
"""execsnoop: trace new processes (exec() syscalls), with their arguments and return value."""

from __future__ import annotations

import argparse
import pwd
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.containers import filter_by_containers
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool execsnoop                      # trace all exec() syscalls
    rbcc tool execsnoop -x                   # include failed exec()s
    rbcc tool execsnoop -T                   # include time (HH:MM:SS)
    rbcc tool execsnoop -P 181               # only trace new processes whose parent PID is 181
    rbcc tool execsnoop -U                   # include UID
    rbcc tool execsnoop -u 1000              # only trace UID 1000
    rbcc tool execsnoop -u user              # get user UID and trace only them
    rbcc tool execsnoop -t                   # include timestamps
    rbcc tool execsnoop -q                   # add "quotemarks" around arguments
    rbcc tool execsnoop -n main              # only print command lines containing "main"
    rbcc tool execsnoop -l tpkg              # only print command where arguments contains "tpkg"
    rbcc tool execsnoop --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool execsnoop --mntnsmap mappath   # only trace mount namespaces in the map
"""

# One event per argument (the filename first), then one with the return value: a command line of
# any length needs no large buffer in the kernel. Arguments come from the syscall tracepoints, which
# every kernel with BPF has, so no kprobe is needed.
BPF_TEXT = r"""
#include <linux/sched.h>

#define ARGSIZE 128
#define EVENT_ARG 0
#define EVENT_RET 1

struct event_t {
    u32 pid;
    u32 ppid;
    u32 uid;
    int retval;
    int type;
    char comm[TASK_COMM_LEN];
    char argv[ARGSIZE];
};

BPF_PERF_OUTPUT(events);

static __always_inline int skip_task(struct event_t *e) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = (u32)bpf_get_current_uid_gid();
    e->ppid = task->real_parent->tgid;
    if (UID_FILTER || PPID_FILTER)
        return 1;
    return container_should_be_filtered();
}

static __always_inline void submit_arg(void *ctx, struct event_t *e, const char *ptr) {
    if (bpf_probe_read_user_str(e->argv, sizeof(e->argv), ptr) > 0)
        events.perf_submit(ctx, e, sizeof(*e));
}

TRACEPOINT_PROBE(syscalls, sys_enter_execve) {
    struct event_t e = {};
    if (skip_task(&e))
        return 0;
    e.type = EVENT_ARG;
    submit_arg(args, &e, args->filename);
    const char *const *argv = (const char *const *)args->argv;
    // argv[0] repeats the command; the rest follow the filename
    for (int i = 1; i < MAXARG; i++) {
        const char *arg = NULL;
        if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
            return 0;
        submit_arg(args, &e, arg);
    }
    // more arguments than shown: say so with "..."
    const char *more = NULL;
    if (!bpf_probe_read_user(&more, sizeof(more), &argv[MAXARG]) && more) {
        __builtin_memcpy(e.argv, "...", 4);
        events.perf_submit(args, &e, sizeof(e));
    }
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_execve) {
    struct event_t e = {};
    if (skip_task(&e))
        return 0;
    e.type = EVENT_RET;
    e.retval = args->ret;
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""

EVENT_ARG, EVENT_RET = 0, 1


def parse_uid(user: str) -> int:
    try:
        return int(user)
    except ValueError:
        try:
            return pwd.getpwnam(user).pw_uid
        except KeyError:
            raise argparse.ArgumentTypeError(f"{user!r} is not a valid UID or user entry") from None


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("execsnoop", "Trace exec() syscalls", EXAMPLES)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
    common.add_containers(p)
    p.add_argument("-u", "--uid", type=parse_uid, metavar="USER", help="trace this UID only")
    p.add_argument("-q", "--quote", action="store_true", help='Add quotemarks (") around arguments.')
    p.add_argument("-n", "--name", help="only print commands matching this name (regex), any arg")
    p.add_argument("-l", "--line", help="only print commands where arg contains this line (regex)")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument(
        "--max-args",
        type=common.positive_int,
        default=20,
        help="maximum number of arguments parsed and displayed, defaults to 20",
    )
    p.add_argument("-P", "--ppid", type=int, help="trace this parent PID only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return filter_by_containers(args) + BPF_TEXT.replace("MAXARG", str(args.max_args)).replace(
        "UID_FILTER", f"e->uid != {args.uid}" if args.uid is not None else "0"
    ).replace("PPID_FILTER", f"e->ppid != {args.ppid}" if args.ppid is not None else "0")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("execsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    header = ""
    if args.time:
        header += "%-9s" % "TIME"
    if args.timestamp:
        header += "%-8s" % "TIME(s)"
    if args.print_uid:
        header += "%-6s" % "UID"
    print(header + "%-16s %-7s %-7s %3s %s" % ("PCOMM", "PID", "PPID", "RET", "ARGS"), flush=True)

    start = time.time()
    pending: dict[int, list[bytes]] = defaultdict(list)
    name = re.compile(args.name.encode()) if args.name else None
    line = re.compile(args.line.encode()) if args.line else None

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        if e.type == EVENT_ARG:
            pending[e.pid].append(e.argv)
            return
        argv = pending.pop(e.pid, [])
        if e.retval != 0 and not args.fails:
            return
        if name is not None and not name.search(e.comm):
            return
        if line is not None and not line.search(b" ".join(argv)):
            return
        if args.quote:
            argv = [b'"' + a.replace(b'"', b'\\"') + b'"' for a in argv]
        out = b""
        if args.time:
            out += b"%-9s" % common.strftime_now().encode()
        if args.timestamp:
            out += b"%-8.3f" % (time.time() - start)
        if args.print_uid:
            out += b"%-6d" % e.uid
        ppid = b"%d" % e.ppid if e.ppid > 0 else b"?"
        text = b" ".join(argv).replace(b"\n", b"\\n")
        printb(out + b"%-16s %-7d %-7s %3d %s" % (e.comm, e.pid, ppid, e.retval, text))

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
