#!/usr/bin/env python3
"""tcptracer: trace TCP connections as they are established (connect, accept) and closed.

bcc uses kprobes on tcp_v4_connect/tcp_v6_connect, tcp_set_state, inet_csk_accept and tcp_close. Here:
connect (C) is sock:inet_sock_set_state's SYN_SENT -> ESTABLISHED, credited to the task that moved the
socket CLOSE -> SYN_SENT inside connect(); accept (A) is accept()/accept4() returning a TCP socket
(syscalls:sys_exit_accept*, the socket read from the new fd); close (X) is the socket leaving
ESTABLISHED for FIN_WAIT1 or CLOSE_WAIT for LAST_ACK, which close() (or shutdown()) does in the
closing task, or going straight to CLOSE when close() resets it (unread data, SO_LINGER 0).
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from rbcc._tools import common, sockfd, tcp
from rbcc.containers import filter_by_containers

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcptracer             # trace all TCP established connections
    rbcc tool tcptracer -v          # verbose output (event names, ns times, network namespaces)
    rbcc tool tcptracer -t          # include timestamps
    rbcc tool tcptracer -p 181      # only trace PID 181
    rbcc tool tcptracer -N 4026531969  # only trace network namespace 4026531969
    rbcc tool tcptracer -4          # only trace IPv4 family
    rbcc tool tcptracer -6          # only trace IPv6 family
"""

BPF_TEXT = r"""
#include <net/sock.h>

#define EV_CONNECT 1
#define EV_ACCEPT 2
#define EV_CLOSE 3
#define SHUTDOWN_MASK 3  /* RCV_SHUTDOWN | SEND_SHUTDOWN: a macro, not in BTF */

struct event_t {
    u64 ts_ns;
    u32 pid;
    u32 netns;
    u16 type;
    u16 family;
    u16 sport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
    char comm[TASK_COMM_LEN];
};

struct who_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(connecting, struct sock *, struct who_t);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO
READ_SK_ADDRS_MACRO
ACCEPTED_TCP_C

static __always_inline int zero_addr(struct event_t *e) {
    u64 s = 0, d = 0;
    if (e->family == AF_INET)
        return *(u32 *)e->saddr == 0 || *(u32 *)e->daddr == 0;
    __builtin_memcpy(&s, e->saddr, 8);
    __builtin_memcpy(&d, e->daddr, 8);
    return (s == 0 && *(u64 *)&e->saddr[8] == 0) || (d == 0 && *(u64 *)&e->daddr[8] == 0);
}

static __always_inline void emit(void *ctx, struct event_t *e) {
    if (e->sport == 0 || e->dport == 0 || zero_addr(e))
        return;  // not a connection yet (as bcc skips tuples with a zero address or port)
    e->ts_ns = bpf_ktime_get_ns();
    events.perf_submit(ctx, e, sizeof(*e));
}

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    int old = args->oldstate, new = args->newstate;
    u16 family = args->family;
    if (FAMILY_SKIP)
        return 0;
    struct event_t e = {.family = family, .sport = args->sport, .dport = args->dport};
    if (old == TCP_CLOSE && new == TCP_SYN_SENT) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        if (container_should_be_filtered() || PID_SKIP)
            return 0;
        struct who_t who = {.pid = pid};
        bpf_get_current_comm(&who.comm, sizeof(who.comm));
        connecting.update(&sk, &who);
        return 0;
    }
    if (old == TCP_SYN_SENT) {
        struct who_t *who = connecting.lookup(&sk);
        if (!who)
            return 0;
        e.pid = who->pid;
        __builtin_memcpy(e.comm, who->comm, sizeof(e.comm));
        connecting.delete(&sk);
        if (new != TCP_ESTABLISHED)
            return 0;
        e.type = EV_CONNECT;
    } else if ((old == TCP_ESTABLISHED && new == TCP_FIN_WAIT1) || (old == TCP_CLOSE_WAIT && new == TCP_LAST_ACK) ||
               ((old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT) && new == TCP_CLOSE &&
                BPF_CORE_READ(sk, sk_shutdown) == SHUTDOWN_MASK)) {
        // the last: close() resetting the connection (unread data, or SO_LINGER 0); it marks the
        // socket shut both ways first, where a reset received goes to CLOSE before that
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        if (container_should_be_filtered() || PID_SKIP)
            return 0;
        e.pid = pid;
        e.type = EV_CLOSE;
        bpf_get_current_comm(&e.comm, sizeof(e.comm));
    } else {
        return 0;
    }
    e.netns = netns_of(sk);
    if (NETNS_SKIP)
        return 0;
    COPY_ADDRS(&e, args);
    emit(args, &e);
    return 0;
}

static __always_inline int on_accept(void *ctx, long ret) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (container_should_be_filtered() || PID_SKIP)
        return 0;
    struct sock *sk = accepted_tcp_sock(ret);
    if (!sk)
        return 0;
    u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (FAMILY_SKIP || (family != AF_INET && family != AF_INET6))
        return 0;
    struct event_t e = {.type = EV_ACCEPT, .pid = pid, .family = family};
    e.netns = netns_of(sk);
    if (NETNS_SKIP)
        return 0;
    e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
    e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    READ_SK_ADDRS(&e, sk, family);
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    emit(ctx, &e);
    return 0;
}
"""

TYPES = {1: ("C", "connect"), 2: ("A", "accept"), 3: ("X", "close")}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcptracer", "Trace TCP connections", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-N", "--netns", type=int, default=0, help="trace this Network Namespace only")
    common.add_containers(p)
    tcp.add_family(p)
    p.add_argument("-v", "--verbose", action="store_true", help="include Network Namespace in the output")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return filter_by_containers(args) + (
        BPF_TEXT.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("READ_SK_ADDRS_MACRO", tcp.READ_SK_ADDRS)
        .replace("ACCEPTED_TCP_C", sockfd.ACCEPTED_TCP)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("NETNS_SKIP", sockfd.netns_skip("e.netns", args.netns))
        .replace("FAMILY_SKIP", tcp.family_skip("family", args))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcptracer", lambda: run(args))


def address(family: int, raw: bytes) -> str:
    text = tcp.ntop(family, raw)
    return text if family == socket.AF_INET else "[" + text + "]"


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    print("Tracing TCP established connections. Ctrl-C to end.")
    columns = ("PID", "COMM", "IP", "SADDR", "DADDR", "SPORT")
    if args.verbose:
        header = "%-14s" % "TIME(ns)" if args.timestamp else ""
        header += "%-12s %-6s %-16s %-2s %-16s %-16s %-6s %-7s" % ("TYPE", *columns, "DPORT")
        if not args.netns:
            header += "%-8s" % "NETNS"
    else:
        header = "%-9s" % "TIME(s)" if args.timestamp else ""
        header += "%-2s %-6s %-16s %-2s %-16s %-16s %-6s %-6s" % ("T", *columns, "DPORT")
    print(header, flush=True)
    first: list[int] = []

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        out = ""
        if args.timestamp:
            if not first:
                first.append(e.ts_ns)
            delta = e.ts_ns - first[0]
            out += "%-14d" % delta if args.verbose else "%-9.3f" % (delta / 1e9)
        short, name = TYPES.get(e.type, ("U", "unknown"))
        out += "%-12s " % name if args.verbose else "%-2s " % short
        out += "%-6d %-16s %-2s %-16s %-16s %-6d %-6d" % (
            e.pid,
            e.comm.decode("utf-8", "replace"),
            tcp.ipver(e.family),
            address(e.family, e.saddr),
            address(e.family, e.daddr),
            e.sport,
            e.dport,
        )
        if args.verbose and not args.netns:
            out += " %-8d" % e.netns
        print(out, flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
