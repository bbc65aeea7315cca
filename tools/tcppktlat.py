#!/usr/bin/env python3
"""tcppktlat: trace the latency from a TCP packet's arrival to the moment a user thread reads it.

As libbpf-tools' tcppktlat: a data packet's arrival is timed at the tcp:tcp_probe tracepoint (a
packet on an established connection, with data_len > 0), the read at tcp:tcp_rcv_space_adjust (in
the reading thread, as recvmsg() copies data out), and tcp:tcp_destroy_sock forgets the socket. Only
the plain tracepoints are used (libbpf-tools prefers their tp_btf twins): they carry the socket's
cookie, ports and addresses. The latency is from the last packet that arrived before the read.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcppktlat             # Trace all TCP packet picked up latency
    rbcc tool tcppktlat -T          # summarize with timestamps
    rbcc tool tcppktlat -p 1216     # filter for pid
    rbcc tool tcppktlat -t 1216     # filter for tid
    rbcc tool tcppktlat -l 8080     # filter for local port
    rbcc tool tcppktlat -r 8080     # filter for remote port
    rbcc tool tcppktlat 1000        # filter for latency higher than 1000us
"""

BPF_TEXT = r"""
struct event_t {
    u64 delta_us;
    u32 pid;
    u32 tid;
    u16 family;
    u16 sport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
    char comm[TASK_COMM_LEN];
};

BPF_HASH(start, u64, u64, 10240);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO

TRACEPOINT_PROBE(tcp, tcp_probe) {
    u16 sport = args->sport, dport = args->dport, family = args->family;
    if (args->data_len == 0 || LPORT_SKIP || RPORT_SKIP || FAMILY_SKIP)
        return 0;  // a pure ACK has nothing to read
    u64 cookie = args->sock_cookie;
    u64 ts = bpf_ktime_get_ns();
    start.update(&cookie, &ts);
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_rcv_space_adjust) {
    u64 cookie = args->sock_cookie;
    u64 *tsp = start.lookup(&cookie);
    if (!tsp)
        return 0;
    u64 delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
    start.delete(&cookie);
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = (u32)id;
    if (PID_SKIP || TID_SKIP || delta_us <= MIN_US)
        return 0;
    struct event_t e = {.delta_us = delta_us, .pid = pid, .tid = tid};
    e.family = args->family;
    e.sport = args->sport;
    e.dport = args->dport;
    COPY_ADDRS(&e, args);
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}

TRACEPOINT_PROBE(tcp, tcp_destroy_sock) {
    u64 cookie = args->sock_cookie;
    start.delete(&cookie);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcppktlat", "Trace latency between TCP received pkt and picked up by userspace thread.", EXAMPLES
    )
    p.add_argument("-p", "--pid", type=common.positive_int, help="Process PID to trace")
    p.add_argument("-t", "--tid", type=common.positive_int, help="Thread TID to trace")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-l", "--lport", type=common.non_negative_int, help="filter for local port")
    p.add_argument("-r", "--rport", type=common.non_negative_int, help="filter for remote port")
    p.add_argument("-v", "--verbose", action="store_true", help="Verbose debug output")
    p.add_argument("-w", "--wide", action="store_true", help="Wide column output (fits IPv6 addresses)")
    tcp.add_family(p)
    p.add_argument("min_us", nargs="?", type=common.positive_int, default=0, help="minimum latency (us)")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("LPORT_SKIP", f"sport != {args.lport}" if args.lport else "0")
        .replace("RPORT_SKIP", f"dport != {args.rport}" if args.rport else "0")
        .replace("FAMILY_SKIP", tcp.family_skip("family", args))
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("TID_SKIP", common.pid_condition("tid", args.tid))
        .replace("MIN_US", str(args.min_us))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcppktlat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    text = bpf_text(args)
    if args.verbose and not args.ebpf:
        print(text, file=sys.stderr)
    b = common.load(args, text)
    if b is None:
        return 0
    width = 26 if args.wide else 15
    fmt = f"%-7s %-7s %-16s %-{width}s %-5s %-{width}s %-5s %s"
    header = "%-8s " % "TIME(s)" if args.timestamp else ""
    print(header + fmt % ("PID", "TID", "COMM", "LADDR", "LPORT", "RADDR", "RPORT", "MS"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        out = "%-8s " % time.strftime("%H:%M:%S") if args.timestamp else ""
        out += fmt % (
            e.pid,
            e.tid,
            e.comm.decode("utf-8", "replace"),
            tcp.ntop(e.family, e.saddr),
            e.sport,
            tcp.ntop(e.family, e.daddr),
            e.dport,
            "%.2f" % (e.delta_us / 1000),
        )
        print(out, flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
