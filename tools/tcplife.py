#!/usr/bin/env python3
"""tcplife: trace the lifespan of TCP sessions (addresses, ports, bytes, duration) and summarize.

Every state change comes from the sock:inet_sock_set_state tracepoint; the bytes come from the
socket's struct tcp_sock (bytes_received, bytes_acked) when it reaches CLOSE, as bcc does: nothing is
traced per send or receive. The PID and COMM are those of the process that started the connection
(SYN_SENT) or closed it last (LAST_ACK); otherwise whoever was running when the socket closed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcplife           # trace all TCP connect()s
    rbcc tool tcplife -T        # include time column (HH:MM:SS)
    rbcc tool tcplife -w        # wider columns (fit IPv6)
    rbcc tool tcplife -stT      # csv output, with times & timestamps
    rbcc tool tcplife -p 181    # only trace PID 181
    rbcc tool tcplife -L 80     # only trace local port 80
    rbcc tool tcplife -L 80,81  # only trace local ports 80 and 81
    rbcc tool tcplife -D 80     # only trace remote port 80
    rbcc tool tcplife -4        # only trace IPv4 family
    rbcc tool tcplife -6        # only trace IPv6 family
"""

BPF_TEXT = r"""
#include <net/sock.h>
#include <linux/tcp.h>

struct event_t {
    u64 ts_us;
    u64 span_us;
    u64 rx_b;
    u64 tx_b;
    u32 pid;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
    char task[TASK_COMM_LEN];
};

struct id_t {
    u32 pid;
    char task[TASK_COMM_LEN];
};

BPF_HASH(birth, struct sock *, u64);
BPF_HASH(whoami, struct sock *, struct id_t);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u16 lport = args->sport;
    u16 dport = args->dport;
    int state = args->newstate;
    if (LPORT_SKIP || DPORT_SKIP) {
        birth.delete(&sk);
        return 0;
    }

    // The PID is not known yet in the early states (softirq context), so every socket gets a birth
    // time and the PID filter waits for SYN_SENT/LAST_ACK or CLOSE.
    if (state < TCP_FIN_WAIT1) {
        u64 ts = bpf_ktime_get_ns();
        birth.update(&sk, &ts);
    }
    if (state == TCP_SYN_SENT || state == TCP_LAST_ACK) {
        if (PID_SKIP)
            return 0;
        struct id_t me = {.pid = pid};
        bpf_get_current_comm(&me.task, sizeof(me.task));
        whoami.update(&sk, &me);
    }
    if (state != TCP_CLOSE)
        return 0;

    u64 *born = birth.lookup(&sk);
    if (!born) {
        whoami.delete(&sk);
        return 0;  // its start was before we began
    }
    struct event_t e = {};
    e.ts_us = bpf_ktime_get_ns() / 1000;
    e.span_us = e.ts_us - *born / 1000;
    birth.delete(&sk);

    struct id_t *who = whoami.lookup(&sk);
    if (who)
        pid = who->pid;
    if (PID_SKIP || FAMILY_SKIP) {
        whoami.delete(&sk);
        return 0;
    }
    e.family = args->family;
    e.pid = pid;
    e.lport = lport;
    e.dport = dport;
    struct tcp_sock *tp = (struct tcp_sock *)sk;
    e.rx_b = tp->bytes_received;
    e.tx_b = tp->bytes_acked;
    COPY_ADDRS(&e, args);
    if (who) {
        __builtin_memcpy(e.task, who->task, sizeof(e.task));
        whoami.delete(&sk);
    } else {
        bpf_get_current_comm(&e.task, sizeof(e.task));
    }
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcplife", "Trace the lifespan of TCP sessions and summarize", EXAMPLES)
    tcp.add_session_output(p)
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    tcp.add_port_filters(p)
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return tcp.session_filters(BPF_TEXT.replace("PID_SKIP", common.pid_condition("pid", args.pid)), args)


def formats(args: argparse.Namespace) -> tuple[str, str]:
    """bcc's (header, row) formats: 80 columns by default, wide for IPv6, or CSV."""
    if args.csv:
        return "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", "%d,%s,%s,%s,%d,%s,%d,%d,%d,%.2f"
    if args.wide:
        return (
            "%-5s %-16.16s %-2s %-26s %-5s %-26s %-5s %6s %6s %s",
            "%-5d %-16.16s %-2s %-26s %-5d %-26s %-5d %6d %6d %.2f",
        )
    return "%-5s %-10.10s %s%-15s %-5s %-15s %-5s %5s %5s %s", "%-5d %-10.10s %s%-15s %-5d %-15s %-5d %5d %5d %.2f"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcplife", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    header_fmt, row_fmt = formats(args)
    with_ip = args.wide or args.csv
    times = tcp.TimeColumns(args)
    header = header_fmt % (
        "PID",
        "COMM",
        "IP" if with_ip else "",
        "LADDR",
        "LPORT",
        "RADDR",
        "RPORT",
        "TX_KB",
        "RX_KB",
        "MS",
    )
    print(times.header() + header, flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        row = row_fmt % (
            e.pid,
            e.task.decode("utf-8", "replace"),
            *tcp.endpoints(e, with_ip),
            e.tx_b // 1024,
            e.rx_b // 1024,
            e.span_us / 1000,
        )
        print(times.row(e.ts_us) + row, flush=True)

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
