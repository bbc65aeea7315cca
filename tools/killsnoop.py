#!/usr/bin/env python3
"""killsnoop: trace signals issued by the kill() syscall, with sender, signal, target and result.

Uses the kill syscall's tracepoints (sys_enter_kill/sys_exit_kill) instead of bcc's kprobes on the
syscall function. As bcc's, it sees kill() only: signals sent with tkill(), tgkill() (raise(),
pthread_kill()) or pidfd_send_signal() are not shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool killsnoop           # trace all kill() signals
    rbcc tool killsnoop -x        # only show failed kills
    rbcc tool killsnoop -p 181    # only trace PID 181
    rbcc tool killsnoop -T 189    # only trace target PID 189
    rbcc tool killsnoop -s 9      # only trace signal 9
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct val_t {
    int sig;
    int tpid;
};

struct data_t {
    u32 pid;
    int tpid;
    int sig;
    int ret;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(infotmp, u32, struct val_t);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_kill) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    int tpid = args->pid;
    int sig = args->sig;
    if (SKIP)
        return 0;
    struct val_t val = {.sig = sig, .tpid = tpid};
    infotmp.update(&tid, &val);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_kill) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct val_t *valp = infotmp.lookup(&tid);
    if (!valp)
        return 0;
    struct data_t data = {.pid = pid_tgid >> 32, .tpid = valp->tpid, .sig = valp->sig, .ret = args->ret};
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    infotmp.delete(&tid);
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("killsnoop", "Trace signals issued by the kill() syscall", EXAMPLES)
    p.add_argument("-x", "--failed", action="store_true", help="only show failed kill syscalls")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only which is the sender of signal")
    p.add_argument("-T", "--tpid", type=int, help="trace this target PID only which is the receiver of signal")
    p.add_argument("-s", "--signal", type=int, help="trace this signal only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    skip = []
    if args.tpid is not None:
        skip.append(f"tpid != {args.tpid}")
    if args.pid is not None:
        skip.append(f"pid != {args.pid}")
    if args.signal is not None:
        skip.append(f"sig != {args.signal}")
    return BPF_TEXT.replace("SKIP", " || ".join(skip) or "0")


def pid_width() -> int:
    """bcc's PID column width: the digits of the largest PID, plus one."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return len(f.read().strip()) + 1
    except OSError:
        return 6


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("killsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    width = pid_width()
    print("%-9s %-*s %-16s %-4s %-*s %s" % ("TIME", width, "PID", "COMM", "SIG", width, "TPID", "RESULT"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        if args.failed and e.ret >= 0:
            return
        now = common.strftime_now().encode()
        printb(b"%-9s %-*d %-16s %-4d %-*d %d" % (now, width, e.pid, e.comm, e.sig, width, e.tpid, e.ret))

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
