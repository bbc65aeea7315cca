#!/usr/bin/env python3
"""solisten: trace IPv4 and IPv6 sockets that start listening (listen()), with backlog, port, address.

bcc reads inet_listen's arguments with a kprobe. Here listen() itself is traced
(syscalls:sys_enter_listen and sys_exit_listen) and the socket is read from the file descriptor when
the call succeeds: so a failed listen() is not shown, the backlog is the one the kernel kept (the
argument capped at net.core.somaxconn, as inet_listen receives it), and a socket listen() bound
itself shows the port it got (bcc shows 0 there).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from rbcc._tools import common, sockfd, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """Examples:
    rbcc tool solisten              # Stream socket listen
    rbcc tool solisten -p 1234      # Stream socket listen for specified PID only
    rbcc tool solisten --netns 4242 # " for the specified network namespace ID only
    rbcc tool solisten --show-netns # Show network ns ID (useful for containers)
"""

BPF_TEXT = r"""
#include <net/sock.h>
#include <net/inet_sock.h>

struct listen_evt_t {
    u64 ts_us;
    u32 pid;
    u32 backlog;
    u32 netns;
    u16 family;
    u16 type;
    u16 lport;
    u8 laddr[16];
    char task[TASK_COMM_LEN];
};

BPF_HASH(listening, u32, int);
BPF_PERF_OUTPUT(listen_evt);

SOCK_OF_FD_C

TRACEPOINT_PROBE(syscalls, sys_enter_listen) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32, tid = (u32)pid_tgid;
    if (PID_SKIP)
        return 0;
    int fd = args->fd;
    listening.update(&tid, &fd);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_listen) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    int *fdp = listening.lookup(&tid);
    if (!fdp)
        return 0;
    int fd = *fdp;
    listening.delete(&tid);
    if (args->ret != 0)
        return 0;
    struct socket *sock = socket_of_fd(fd);
    if (!sock)
        return 0;
    struct sock *sk = BPF_CORE_READ(sock, sk);
    if (!sk)
        return 0;
    struct listen_evt_t e = {.pid = pid_tgid >> 32};
    e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (e.family != AF_INET && e.family != AF_INET6)
        return 0;  // inet_listen's sockets only
    e.netns = netns_of(sk);
    if (NETNS_SKIP)
        return 0;
    e.ts_us = bpf_ktime_get_ns() / 1000;
    e.type = BPF_CORE_READ(sock, type);
    e.backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
    e.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    if (e.family == AF_INET)
        bpf_probe_read_kernel(e.laddr, 4, &sk->__sk_common.skc_rcv_saddr);
    else
        bpf_probe_read_kernel(e.laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
    bpf_get_current_comm(&e.task, sizeof(e.task));
    listen_evt.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("solisten", "Stream sockets listen", EXAMPLES)
    p.add_argument("--show-netns", action="store_true", help="show network namespace")
    p.add_argument("-p", "--pid", type=int, default=0, help="trace this PID only")
    p.add_argument("-n", "--netns", type=int, default=0, help="trace this Network Namespace only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("SOCK_OF_FD_C", sockfd.SOCK_OF_FD)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid or None))
        .replace("NETNS_SKIP", sockfd.netns_skip("e.netns", args.netns))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("solisten", lambda: run(args))


def protocol(family: int, kind: int) -> str:
    names = {int(socket.SOCK_STREAM): "TCP", int(socket.SOCK_DGRAM): "UDP"}
    name = names.get(kind, "UNK")
    return name + ("v4" if family == socket.AF_INET else "v6")


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["listen_evt"].event(data)
        task = e.task.decode("utf-8", "replace")
        proto, addr = protocol(e.family, e.type), tcp.ntop(e.family, e.laddr)
        if args.show_netns:
            row = "%-7d %-12.12s %-12d %-6s %-8d %-5d %-39s" % (
                e.pid, task, e.netns, proto, e.backlog, e.lport, addr,
            )  # fmt: skip
        else:
            row = "%-7d %-12.12s %-6s %-8d %-5d %-39s" % (e.pid, task, proto, e.backlog, e.lport, addr)
        print(row, flush=True)

    b["listen_evt"].open_perf_buffer(on_event)
    if args.show_netns:
        print("%-7s %-12s %-12s %-6s %-8s %-5s %-39s" % ("PID", "COMM", "NETNS", "PROTO", "BACKLOG", "PORT", "ADDR"))
    else:
        print("%-7s %-12s %-6s %-8s %-5s %-39s" % ("PID", "COMM", "PROTO", "BACKLOG", "PORT", "ADDR"))
    sys.stdout.flush()
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
