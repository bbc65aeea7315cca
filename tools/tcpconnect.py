#!/usr/bin/env python3
"""tcpconnect: trace active TCP connections (connect()), or count them per address and port.

bcc probes tcp_v4_connect/tcp_v6_connect with kprobes; this kernel's tracepoints see the same moment:
sock:inet_sock_set_state's CLOSE -> SYN_SENT runs inside those functions, in the connecting task.
The local port is bound just after that change, so it is read from the socket when connect()
returns (syscalls:sys_exit_connect) or when the socket leaves SYN_SENT, whichever comes first (the
latter also covers connects made by sendto() with MSG_FASTOPEN). Every attempt that sends a SYN is
shown, even if it fails later, as in bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, tcp
from rbcc.containers import filter_by_containers
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpconnect           # trace all TCP connect()s
    rbcc tool tcpconnect -t        # include timestamps
    rbcc tool tcpconnect -p 181    # only trace PID 181
    rbcc tool tcpconnect -P 80     # only trace port 80
    rbcc tool tcpconnect -P 80,81  # only trace port 80 and 81
    rbcc tool tcpconnect -4        # only trace IPv4 family
    rbcc tool tcpconnect -6        # only trace IPv6 family
    rbcc tool tcpconnect -U        # include UID
    rbcc tool tcpconnect -u 1000   # only trace UID 1000
    rbcc tool tcpconnect -c        # count connects per src ip and dest ip/port
    rbcc tool tcpconnect -L        # include LPORT while printing outputs
    rbcc tool tcpconnect --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool tcpconnect --mntnsmap mappath   # only trace mount namespaces in the map
"""

BPF_TEXT = r"""
#include <net/sock.h>

struct event_t {
    u64 ts_us;
    u32 pid;
    u32 uid;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
    char task[TASK_COMM_LEN];
};

struct flow_t {
    u8 saddr[16];
    u8 daddr[16];
    u16 dport;
    u16 family;
};

BPF_HASH(pending, struct sock *, struct event_t);
BPF_HASH(connecting, u32, struct sock *);
BPF_HASH(counts, struct flow_t, u64);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO

static __always_inline void report(void *ctx, struct sock *sk, struct event_t *e) {
#if COUNT_MODE
    struct flow_t flow = {};
    __builtin_memcpy(flow.saddr, e->saddr, sizeof(flow.saddr));
    __builtin_memcpy(flow.daddr, e->daddr, sizeof(flow.daddr));
    flow.dport = e->dport;
    flow.family = e->family;
    counts.increment(flow);
#else
    events.perf_submit(ctx, e, sizeof(*e));
#endif
    pending.delete(&sk);
}

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    if (args->oldstate == TCP_SYN_SENT) {
        // connected, refused or timed out before connect() returned: the port is in the event now
        struct event_t *e = pending.lookup(&sk);
        if (e) {
            e->lport = args->sport;
            report(args, sk, e);
        }
        return 0;
    }
    if (args->oldstate != TCP_CLOSE || args->newstate != TCP_SYN_SENT)
        return 0;

    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32, tid = (u32)pid_tgid;
    u32 uid = (u32)bpf_get_current_uid_gid();
    u16 dport = args->dport;
    if (container_should_be_filtered() || PID_SKIP || UID_SKIP || PORT_SKIP || FAMILY_SKIP)
        return 0;
    struct event_t e = {.pid = pid, .uid = uid, .dport = dport, .family = args->family};
    e.ts_us = bpf_ktime_get_ns() / 1000;
    COPY_ADDRS(&e, args);
    bpf_get_current_comm(&e.task, sizeof(e.task));
    pending.update(&sk, &e);
    connecting.update(&tid, &sk);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_connect) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct sock **skp = connecting.lookup(&tid);
    if (!skp)
        return 0;
    struct sock *sk = *skp;
    connecting.delete(&tid);
    struct event_t *e = pending.lookup(&sk);
    if (e) {
        // an explicit read: rbcc does not yet rewrite accesses through a pointer loaded from a map value
        bpf_probe_read_kernel(&e->lport, sizeof(e->lport), &sk->__sk_common.skc_num);
        report(args, sk, e);
    }
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcpconnect",
        "Trace TCP connects (at the socket's CLOSE -> SYN_SENT change, in the connecting task)",
        EXAMPLES,
    )
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-P", "--port", type=tcp.port_list, help="comma-separated list of destination ports to trace.")
    tcp.add_family(p)
    p.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="include UID on output")
    p.add_argument("-u", "--uid", type=int, help="trace this UID only")
    p.add_argument("-c", "--count", action="store_true", help="count connects per src ip and dest ip/port")
    common.add_containers(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return filter_by_containers(args) + (
        BPF_TEXT.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("COUNT_MODE", "1" if args.count else "0")
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("UID_SKIP", f"uid != {args.uid}" if args.uid is not None else "0")
        .replace("PORT_SKIP", tcp.ports_skip("dport", args.port))
        .replace("FAMILY_SKIP", tcp.family_skip("args->family", args))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpconnect", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing connect ... Hit Ctrl-C to end", flush=True)
        if args.count:
            tcp.counts_at_end(
                b,
                "%-25s %-25s %-20s %-10s" % ("LADDR", "RADDR", "RPORT", "CONNECTS"),
                lambda k, n: (
                    "%-25s %-25s %-20s %-10d" % (tcp.ntop(k.family, k.saddr), tcp.ntop(k.family, k.daddr), k.dport, n)
                ),
            )
            return 0
        times = tcp.TimeColumns(args, "%-9s", ("%-9.3f", "%-9s"))
        header = times.header()
        if args.print_uid:
            header += "%-6s" % "UID"
        if args.lport:
            header += "%-7s %-12s %-2s %-16s %-6s %-16s %-6s" % (
                "PID",
                "COMM",
                "IP",
                "SADDR",
                "LPORT",
                "DADDR",
                "DPORT",
            )
        else:
            header += "%-7s %-12s %-2s %-16s %-16s %-6s" % ("PID", "COMM", "IP", "SADDR", "DADDR", "DPORT")
        print(header, flush=True)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            out = times.row(e.ts_us).encode()
            if args.print_uid:
                out += b"%-6d" % e.uid
            src, dst = tcp.ntop(e.family, e.saddr).encode(), tcp.ntop(e.family, e.daddr).encode()
            ver = int(tcp.ipver(e.family))
            if args.lport:
                out += b"%-7d %-12.12s %-2d %-16s %-6d %-16s %-6d " % (e.pid, e.task, ver, src, e.lport, dst, e.dport)
            else:
                out += b"%-7d %-12.12s %-2d %-16s %-16s %-6d " % (e.pid, e.task, ver, src, dst, e.dport)
            printb(out)

        b["events"].open_perf_buffer(on_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
