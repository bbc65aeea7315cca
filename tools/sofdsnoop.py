#!/usr/bin/env python3
"""sofdsnoop: trace file descriptors passed through Unix sockets (SCM_RIGHTS), sent and received.

Reads the message of each sendmsg() and recvmsg() from user memory: at the sys_enter_sendmsg
tracepoint, the descriptors a process sends; at sys_exit_recvmsg, the ones the kernel installed in
the receiving process. bcc reads the kernel's copy instead, with kprobes on __scm_send and
scm_detach_fds: the same descriptors, but bcc sees sendmmsg()/recvmmsg() batches too, which are not
traced here. As in bcc, only the first control message of a message is looked at, at most 10
descriptors of it are shown, and a file's NAME is what /proc shows for the descriptor when the line
is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rbcc._tools import common, proc

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool sofdsnoop           # trace passed file descriptors
    rbcc tool sofdsnoop -T        # include timestamps
    rbcc tool sofdsnoop -p 181    # only trace PID 181
    rbcc tool sofdsnoop -t 123    # only trace TID 123
    rbcc tool sofdsnoop -d 10     # trace for 10 seconds only
    rbcc tool sofdsnoop -n main   # only print process names containing "main"
"""

SEND, RECV = 0, 1
MAX_FD = 10

BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/socket.h>

#define MAX_FD 10

struct event_t {
    u64 id;
    u64 ts;
    int action;
    int sock_fd;
    int fd_cnt;
    int fd[MAX_FD];
    char comm[TASK_COMM_LEN];
};

struct receiving_t {
    struct user_msghdr *msg;
    int fd;
};

BPF_HASH(receiving, u64, struct receiving_t, 10240);
BPF_PERCPU_ARRAY(scratch, struct event_t, 1);
BPF_PERF_OUTPUT(events);

static __always_inline int allowed(void)
{
TASK_IDS
    return !(SKIP);
}

// the descriptors of the message's first control message, if it passes some (SCM_RIGHTS)
static __always_inline int report(void *ctx, struct user_msghdr *msg, int fd, int action)
{
    struct user_msghdr m = {};
    if (bpf_probe_read_user(&m, sizeof(m), msg) != 0)
        return 0;
    if (m.msg_control == NULL || m.msg_controllen < sizeof(struct cmsghdr))
        return 0;
    struct cmsghdr c = {};
    if (bpf_probe_read_user(&c, sizeof(c), m.msg_control) != 0)
        return 0;
    if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != SCM_RIGHTS || c.cmsg_len <= sizeof(c))
        return 0;
    int zero = 0;
    struct event_t *e = scratch.lookup(&zero);
    if (e == NULL)
        return 0;
    int count = (c.cmsg_len - sizeof(c)) / sizeof(int);
    e->fd_cnt = count < MAX_FD ? count : MAX_FD;
    __builtin_memset(&e->fd, 0xff, sizeof(e->fd));
    bpf_probe_read_user(&e->fd, e->fd_cnt * sizeof(int) & 63, (char *)m.msg_control + sizeof(c));
    e->id = bpf_get_current_pid_tgid();
    e->ts = bpf_ktime_get_ns() / 1000;
    e->action = action;
    e->sock_fd = fd;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    events.perf_submit(ctx, e, sizeof(*e));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_sendmsg) {
    if (!allowed())
        return 0;
    return report(args, args->msg, args->fd, 0);
}

TRACEPOINT_PROBE(syscalls, sys_enter_recvmsg) {
    if (!allowed())
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    struct receiving_t r = {.msg = args->msg, .fd = args->fd};
    receiving.update(&id, &r);
    return 0;
}

// the kernel has installed the received descriptors and written their numbers to the message
TRACEPOINT_PROBE(syscalls, sys_exit_recvmsg) {
    u64 id = bpf_get_current_pid_tgid();
    struct receiving_t *r = receiving.lookup(&id);
    if (r == NULL)
        return 0;
    struct receiving_t done = *r;
    receiving.delete(&id);
    if (args->ret < 0)
        return 0;
    return report(args, done.msg, done.fd, 1);
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("sofdsnoop", "Trace file descriptors passed via socket", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-t", "--tid", type=int, help="trace this TID only")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    skip = proc.skip_condition(pid=args.pid, tid=args.tid)
    return BPF_TEXT.replace("TASK_IDS", proc.TASK_IDS).replace("SKIP", skip)


def file_of(tid: int, fd: int) -> str:
    try:
        return os.readlink("/proc/%d/fd/%d" % (tid, fd))
    except OSError:
        return "N/A"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("sofdsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        clock = proc.RelativeTime(args.timestamp)
        print(
            clock.header() + "%-6s %-6s %-16s %-25s %-5s %s" % ("ACTION", "TID", "COMM", "SOCKET", "FD", "NAME"),
            flush=True,
        )
        name = args.name.encode() if args.name else None

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            if name is not None and name not in e.comm:
                return
            tid = e.id & 0xFFFFFFFF
            comm = e.comm.decode("utf-8", "replace")
            sock = "%d:%s" % (e.sock_fd, file_of(tid, e.sock_fd))
            for i in range(min(MAX_FD, e.fd_cnt)):
                line = clock.column(e.ts)
                fd = e.fd[i]
                line += "%-6s %-6d %-16s %-25s %-5d %s" % (
                    "SEND" if e.action == SEND else "RECV",
                    tid,
                    comm,
                    sock,
                    fd,
                    file_of(tid, fd) if e.action == SEND else "",
                )
                print(line.rstrip() if e.action == RECV else line)
            sys.stdout.flush()

        b["events"].open_perf_buffer(on_event, page_cnt=64)
        common.poll_events_for(b, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
