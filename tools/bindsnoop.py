#!/usr/bin/env python3
"""bindsnoop: trace IPv4 and IPv6 bind() calls of sockets (TCP, UDP, ...), with their options.

bcc uses kprobes on inet_bind/inet6_bind. Here bind() itself is traced (syscalls:sys_enter_bind and
sys_exit_bind), and the socket is read from the file descriptor when it returns: the protocol, the
options (IP_FREEBIND, IP_TRANSPARENT, IP_BIND_ADDRESS_NO_PORT; SO_REUSEADDR, SO_REUSEPORT), the
device bound to, and, for a bind that succeeded, the address and port it got (as bcc). For a failed
bind (-E) the address and port are the ones asked for (read from the caller's sockaddr), where bcc
shows the socket's unchanged ones.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from rbcc._tools import common, sockfd, tcp
from rbcc.containers import filter_by_containers

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool bindsnoop           # trace all TCP bind()s
    rbcc tool bindsnoop -t        # include timestamps
    rbcc tool bindsnoop -w        # wider columns (fit IPv6)
    rbcc tool bindsnoop -p 181    # only trace PID 181
    rbcc tool bindsnoop -P 80     # only trace port 80
    rbcc tool bindsnoop -P 80,81  # only trace port 80 and 81
    rbcc tool bindsnoop -U        # include UID
    rbcc tool bindsnoop -u 1000   # only trace UID 1000
    rbcc tool bindsnoop -E        # report bind errors
    rbcc tool bindsnoop --count   # count bind per src ip
    rbcc tool bindsnoop --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool bindsnoop --mntnsmap  mappath  # only trace mount namespaces in the map

it is reporting socket options set before the bind call
impacting system call behavior:
 SOL_IP     IP_FREEBIND              F....
 SOL_IP     IP_TRANSPARENT           .T...
 SOL_IP     IP_BIND_ADDRESS_NO_PORT  ..N..
 SOL_SOCKET SO_REUSEADDR             ...R.
 SOL_SOCKET SO_REUSEPORT             ....r

 SO_BINDTODEVICE interface is reported as "IF" index
"""

BPF_TEXT = r"""
#include <net/sock.h>
#include <net/inet_sock.h>

struct asked_t {
    int fd;
    u16 family;
    u16 port;
    u8 addr[16];
};

struct bind_data_t {
    u64 ts_us;
    u32 pid;
    u32 uid;
    u32 bound_dev_if;
    int return_code;
    u16 family;
    u16 sport;
    u8 socket_options;
    u8 protocol;
    u8 saddr[16];
    char task[TASK_COMM_LEN];
};

struct flow_key_t {
    u16 family;
    u16 sport;
    u8 saddr[16];
};

// struct inet_sock's IP options as kernels since 6.6 keep them (inet_flags) and as older ones did
// (bitfields): CO-RE picks the one the running kernel has
struct inet_sock___flags {
    unsigned long inet_flags;
} __attribute__((preserve_access_index));

struct inet_sock___bits {
    __u8 freebind : 1;
    __u8 transparent : 1;
    __u8 bind_address_no_port : 1;
} __attribute__((preserve_access_index));

BPF_HASH(binding, u32, struct asked_t);
BPF_HASH(counts, struct flow_key_t, u64);
BPF_PERF_OUTPUT(bind_events);

SOCK_OF_FD_C

TRACEPOINT_PROBE(syscalls, sys_enter_bind) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32, tid = (u32)pid_tgid;
    u32 uid = (u32)bpf_get_current_uid_gid();
    if (PID_SKIP || UID_SKIP || container_should_be_filtered())
        return 0;
    struct asked_t a = {.fd = args->fd};
    struct sockaddr_in6 sa = {};
    bpf_probe_read_user(&sa, args->addrlen < sizeof(sa) ? args->addrlen & 0x1f : sizeof(sa), args->umyaddr);
    a.family = sa.sin6_family;
    a.port = bpf_ntohs(sa.sin6_port);
    if (a.family == AF_INET)
        __builtin_memcpy(a.addr, &((struct sockaddr_in *)&sa)->sin_addr, 4);
    else
        __builtin_memcpy(a.addr, &sa.sin6_addr, 16);
    binding.update(&tid, &a);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_bind) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tid = (u32)pid_tgid;
    struct asked_t *a = binding.lookup(&tid);
    if (!a)
        return 0;
    struct bind_data_t e = {.pid = pid_tgid >> 32, .return_code = args->ret, .sport = a->port};
    __builtin_memcpy(e.saddr, a->addr, 16);
    int fd = a->fd;
    binding.delete(&tid);
    if (e.return_code != 0 && !REPORT_ERRORS)
        return 0;
    struct socket *sock = socket_of_fd(fd);
    struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
    if (!sk)
        return 0;
    e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if (e.family != AF_INET && e.family != AF_INET6)
        return 0;  // inet_bind's and inet6_bind's sockets only
    if (e.return_code == 0) {
        e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
        if (e.family == AF_INET)
            bpf_probe_read_kernel(e.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
        else
            bpf_probe_read_kernel(e.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
    }
    u16 sport = e.sport;
    if (PORT_SKIP)
        return 0;
#if COUNT_MODE
    struct flow_key_t key = {.family = e.family, .sport = e.sport};
    __builtin_memcpy(key.saddr, e.saddr, 16);
    counts.increment(key);
#else
    u8 opts = 0;
    if (bpf_core_field_exists(struct inet_sock___flags, inet_flags)) {
        // Linux 6.6+: one word of flags, numbered by an anonymous enum (no CO-RE for its values)
        unsigned long flags = BPF_CORE_READ((struct inet_sock___flags *)sk, inet_flags);
        opts |= (flags >> 11) & 1;  // INET_FLAGS_FREEBIND
        opts |= ((flags >> 15) & 1) << 1;  // INET_FLAGS_TRANSPARENT
        opts |= ((flags >> 18) & 1) << 2;  // INET_FLAGS_BIND_ADDRESS_NO_PORT
    } else {
        struct inet_sock___bits *old = (struct inet_sock___bits *)sk;
        opts |= BPF_CORE_READ_BITFIELD_PROBED(old, freebind) & 1;
        opts |= (BPF_CORE_READ_BITFIELD_PROBED(old, transparent) & 1) << 1;
        opts |= (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port) & 1) << 2;
    }
    opts |= (BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuse) & 1) << 3;
    opts |= (BPF_CORE_READ_BITFIELD_PROBED(&sk->__sk_common, skc_reuseport) & 1) << 4;
    e.socket_options = opts;
    e.protocol = BPF_CORE_READ(sk, sk_protocol);
    e.bound_dev_if = BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
    e.uid = (u32)bpf_get_current_uid_gid();
    e.ts_us = bpf_ktime_get_ns() / 1000;
    bpf_get_current_comm(&e.task, sizeof(e.task));
    bind_events.perf_submit(args, &e, sizeof(e));
#endif
    return 0;
}
"""

# (header, row, return code) formats: 80 columns, or wide enough for IPv6 addresses
FORMATS = {
    "narrow": ("%8s %-12.12s %-4s %-15s %-5s %5s %2s", "%8d %-12.12s %-4.4s %-15.15s %5d %-5s %2d", "%3s "),
    "wide": ("%10s %-12.12s %-4s %-39s %-5s %5s %2s", "%10d %-12.12s %-4s %-39s %5d %-5s %2d", "%-25s "),
}

PROTOCOLS = {int(getattr(socket, n)): n[len("IPPROTO_") :] for n in dir(socket) if n.startswith("IPPROTO_")}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("bindsnoop", "Trace TCP binds", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-P", "--port", type=tcp.port_list, help="comma-separated list of ports to trace.")
    p.add_argument("-E", "--errors", action="store_true", help="include errors in the output.")
    p.add_argument("-U", "--print-uid", action="store_true", help="include UID on output")
    p.add_argument("-u", "--uid", type=int, help="trace this UID only")
    p.add_argument("--count", action="store_true", help="count binds per src ip and port")
    common.add_containers(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return filter_by_containers(args) + (
        BPF_TEXT.replace("SOCK_OF_FD_C", sockfd.SOCK_OF_FD)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("UID_SKIP", f"uid != {args.uid}" if args.uid is not None else "0")
        .replace("PORT_SKIP", tcp.ports_skip("sport", args.port))
        .replace("REPORT_ERRORS", "1" if args.errors else "0")
        .replace("COUNT_MODE", "1" if args.count else "0")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("bindsnoop", lambda: run(args))


def opts_text(bits: int) -> str:
    return "".join(c if bits & (1 << i) else "." for i, c in enumerate("FTNRr"))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing binds ... Hit Ctrl-C to end", flush=True)
        if args.count:
            tcp.counts_at_end(
                b,
                "%-32s %20s     %-10s" % ("LADDR", "LPORT", "BINDS"),
                lambda k, n: "%-32s %20s     %-10d" % (tcp.ntop(k.family, k.saddr), k.sport, n),
            )
            return 0
        if args.wide:
            header_fmt, row_fmt, err_fmt = (
                "%10s %-12.12s %-4s %-39s %-5s %5s %2s",
                "%10d %-12.12s %-4s %-39s %5d %-5s %2d",
                "%-25s ",
            )
        else:
            header_fmt, row_fmt, err_fmt = (
                "%8s %-12.12s %-4s %-15s %-5s %5s %2s",
                "%8d %-12.12s %-4.4s %-15.15s %5d %-5s %2d",
                "%3s ",
            )
        times = tcp.TimeColumns(args)
        header = times.header()
        if args.print_uid:
            header += "%6s " % "UID"
        if args.errors:
            header += err_fmt % "RC"
        print(header + header_fmt % ("PID", "COMM", "PROT", "ADDR", "PORT", "OPTS", "IF"), flush=True)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["bind_events"].event(data)
            out = times.row(e.ts_us)
            if args.print_uid:
                out += "%6d " % e.uid
            if args.errors:
                rc = e.return_code
                out += err_fmt % (os.strerror(-rc) if args.wide else str(rc))
            out += row_fmt % (
                e.pid,
                e.task.decode("utf-8", "replace"),
                PROTOCOLS.get(e.protocol, "UNKNOWN"),
                tcp.ntop(e.family, e.saddr),
                e.sport,
                opts_text(e.socket_options),
                e.bound_dev_if,
            )
            print(out, flush=True)

        b["bind_events"].open_perf_buffer(on_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
