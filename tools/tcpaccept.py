#!/usr/bin/env python3
"""tcpaccept: trace passive TCP connections (accept()), with the accepting process.

bcc probes the return of inet_csk_accept with a kretprobe; here the same moment is the return of the
accept()/accept4() syscalls (syscalls:sys_exit_accept*), in the accepting task: the new socket is
found through the returned file descriptor. Accepts made without these syscalls (io_uring, in-kernel
users) are not seen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sockfd, tcp
from rbcc.containers import filter_by_containers
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpaccept           # trace all TCP accept()s
    rbcc tool tcpaccept -t        # include timestamps
    rbcc tool tcpaccept -P 80,81  # only trace port 80 and 81
    rbcc tool tcpaccept -p 181    # only trace PID 181
    rbcc tool tcpaccept --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool tcpaccept --mntnsmap mappath   # only trace mount namespaces in the map
    rbcc tool tcpaccept -4        # trace IPv4 family
    rbcc tool tcpaccept -6        # trace IPv6 family
"""

BPF_TEXT = r"""
#include <net/sock.h>

struct event_t {
    u64 ts_us;
    u32 pid;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
    char task[TASK_COMM_LEN];
};

BPF_PERF_OUTPUT(events);

READ_SK_ADDRS_MACRO
ACCEPTED_TCP_C

static __always_inline int on_accept(void *ctx, long ret) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (container_should_be_filtered() || PID_SKIP)
        return 0;
    struct sock *sk = accepted_tcp_sock(ret);
    if (!sk)
        return 0;
    u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
    if ((family != AF_INET && family != AF_INET6) || FAMILY_SKIP)
        return 0;
    u16 lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    if (PORT_SKIP)
        return 0;
    struct event_t e = {.pid = pid, .lport = lport, .family = family};
    e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    e.ts_us = bpf_ktime_get_ns() / 1000;
    READ_SK_ADDRS(&e, sk, family);
    bpf_get_current_comm(&e.task, sizeof(e.task));
    events.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcpaccept",
        "Trace TCP accepts (at the return of the accept()/accept4() syscalls: accepts made without them, as\n"
        "through io_uring, are not seen)",
        EXAMPLES,
    )
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-P", "--port", type=tcp.port_list, help="comma-separated list of local ports to trace")
    tcp.add_family(p)
    common.add_containers(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return filter_by_containers(args) + (
        BPF_TEXT.replace("READ_SK_ADDRS_MACRO", tcp.READ_SK_ADDRS)
        .replace("ACCEPTED_TCP_C", sockfd.ACCEPTED_TCP)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("PORT_SKIP", tcp.ports_skip("lport", args.port))
        .replace("FAMILY_SKIP", tcp.family_skip("family", args))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpaccept", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    times = tcp.TimeColumns(args, "%-9s", ("%-9.3f", "%-9s"))
    print(
        times.header()
        + "%-7s %-12s %-2s %-16s %-5s %-16s %-5s" % ("PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT"),
        flush=True,
    )

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        out = times.row(e.ts_us).encode()
        raddr, laddr = tcp.ntop(e.family, e.daddr).encode(), tcp.ntop(e.family, e.saddr).encode()
        ver = int(tcp.ipver(e.family))
        printb(out + b"%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d" % (e.pid, e.task, ver, raddr, e.dport, laddr, e.lport))

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
