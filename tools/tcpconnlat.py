#!/usr/bin/env python3
"""tcpconnlat: trace TCP active connection latency (connect() to the handshake's answer).

bcc times tcp_v4_connect/tcp_v6_connect to tcp_rcv_state_process with kprobes. Here both ends come
from the sock:inet_sock_set_state tracepoint: CLOSE -> SYN_SENT (inside connect(), in the connecting
task) starts the clock, and the socket leaving SYN_SENT stops it: to ESTABLISHED when the SYN-ACK
arrives, or to CLOSE with ECONNREFUSED when a RST answers (bcc reports that one too). A connect that
times out is not shown (bcc does not show it either).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpconnlat           # trace all TCP connect()s
    rbcc tool tcpconnlat 1         # trace connection latency slower than 1 ms
    rbcc tool tcpconnlat 0.1       # trace connection latency slower than 100 us
    rbcc tool tcpconnlat -t        # include timestamps
    rbcc tool tcpconnlat -p 181    # only trace PID 181
    rbcc tool tcpconnlat -L        # include LPORT while printing outputs
    rbcc tool tcpconnlat -4        # trace IPv4 family only
    rbcc tool tcpconnlat -6        # trace IPv6 family only
"""

BPF_TEXT = r"""
#include <net/sock.h>

struct start_t {
    u64 ts;
    u32 pid;
    char task[TASK_COMM_LEN];
};

struct event_t {
    u64 ts_us;
    u64 delta_us;
    u32 pid;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
    char task[TASK_COMM_LEN];
};

BPF_HASH(start, struct sock *, struct start_t);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    if (args->oldstate == TCP_CLOSE && args->newstate == TCP_SYN_SENT) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        if (PID_SKIP || FAMILY_SKIP)
            return 0;
        struct start_t s = {.pid = pid};
        s.ts = bpf_ktime_get_ns();
        bpf_get_current_comm(&s.task, sizeof(s.task));
        start.update(&sk, &s);
        return 0;
    }
    if (args->oldstate != TCP_SYN_SENT)
        return 0;
    struct start_t *s = start.lookup(&sk);
    if (!s)
        return 0;
    int answered = args->newstate == TCP_ESTABLISHED;
    if (args->newstate == TCP_CLOSE) {
        // a RST answered (ECONNREFUSED); a timeout (ETIMEDOUT) or an abort is no answer
        int err = 0;
        bpf_probe_read_kernel(&err, sizeof(err), &sk->sk_err);
        answered = err == ECONNREFUSED;
    }
    u64 now = bpf_ktime_get_ns();
    struct event_t e = {};
    e.delta_us = (now - s->ts) / 1000;
    e.pid = s->pid;
    __builtin_memcpy(e.task, s->task, sizeof(e.task));
    start.delete(&sk);
    if (!answered || e.delta_us < MIN_US)
        return 0;
    e.ts_us = now / 1000;
    e.lport = args->sport;
    e.dport = args->dport;
    e.family = args->family;
    COPY_ADDRS(&e, args);
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcpconnlat",
        "Trace TCP connects and show connection latency (SYN_SENT until the answer, from sock:inet_sock_set_state)",
        EXAMPLES,
    )
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    tcp.add_family(p)
    p.add_argument("duration_ms", nargs="?", default=0, type=positive_float, help="minimum duration to trace (ms)")
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program for debugging purposes")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("FAMILY_SKIP", tcp.family_skip("args->family", args))
        .replace("MIN_US", str(int(args.duration_ms * 1000)))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpconnlat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), print_text=args.verbose)
    if b is None:
        return 0
    times = tcp.TimeColumns(args, "%-9s", ("%-9.3f", "%-9s"))
    header = times.header()
    if args.lport:
        header += "%-7s %-12s %-2s %-16s %-6s %-16s %-5s %s" % (
            "PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT", "LAT(ms)",
        )  # fmt: skip
    else:
        header += "%-7s %-12s %-2s %-16s %-16s %-5s %s" % ("PID", "COMM", "IP", "SADDR", "DADDR", "DPORT", "LAT(ms)")
    print(header, flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        out = times.row(e.ts_us)
        task = e.task.decode("utf-8", "replace")
        src, dst, ver = tcp.ntop(e.family, e.saddr), tcp.ntop(e.family, e.daddr), int(tcp.ipver(e.family))
        if args.lport:
            out += "%-7d %-12.12s %-2d %-16s %-6d %-16s %-5d %.2f" % (
                e.pid, task, ver, src, e.lport, dst, e.dport, e.delta_us / 1000,
            )  # fmt: skip
        else:
            out += "%-7d %-12.12s %-2d %-16s %-16s %-5d %.2f" % (e.pid, task, ver, src, dst, e.dport, e.delta_us / 1000)
        print(out, flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
