#!/usr/bin/env python3
"""tcpcong: summarize the time TCP connections spend in each congestion-control state.

The states are open, disorder, cwr, recovery and loss; the times are shown per connection, or as
histograms per state (-d).

The tcp:tcp_cong_state_set tracepoint (Linux 6.2+) fires at each state change, with the socket's
ports and addresses; the time between two changes of a connection is the time spent in the state it
left, as bcc measures with that same tracepoint where the kernel has it (its kprobe/fentry fallback
is for older kernels). Time in the state a connection is in when the interval ends is not counted.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpcong                 # show tcp congestion status duration
    rbcc tool tcpcong 1 10            # show 1 second summaries, 10 times
    rbcc tool tcpcong -L 3000-3006 1  # 1s summaries, local port 3000-3006
    rbcc tool tcpcong -R 5000-5005 1  # 1s summaries, remote port 5000-5005
    rbcc tool tcpcong -uT 1           # 1s summaries, microseconds, and timestamps
    rbcc tool tcpcong -d              # show the duration as histograms
"""

STATES = ("open", "disorder", "cwr", "recovery", "loss")

BPF_TEXT = r"""
#include <net/sock.h>

struct flow_key_t {
    u16 family;
    u16 lport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
};

struct data_val_t {
    u64 dura[5];  // open, disorder, cwr, recovery, loss (TCP_CA_*), in us
    u64 total_changes;
    u64 last_ts;
    u16 last_cong_stat;  // the state + 1: 0 is "none seen yet"
};

struct congest_state_key_t {
    u32 state;
    u64 slot;
};

BPF_HASH(stat, struct flow_key_t, struct data_val_t);
BPF_HISTOGRAM(dist, struct congest_state_key_t);

COPY_ADDRS_MACRO

TRACEPOINT_PROBE(tcp, tcp_cong_state_set) {
    u16 lport = args->sport, dport = args->dport;
    if (LPORT_SKIP || DPORT_SKIP)
        return 0;
    u8 state = args->cong_state;
    struct flow_key_t key = {.family = args->family, .lport = lport, .dport = dport};
    COPY_ADDRS(&key, args);
    u64 now = bpf_ktime_get_ns();
    struct data_val_t *d = stat.lookup(&key);
    if (!d) {
        struct data_val_t first = {.last_ts = now, .last_cong_stat = state + 1};
        stat.update(&key, &first);
        return 0;
    }
    u16 last = d->last_cong_stat;
    if (state + 1 == last)
        return 0;
    u64 us = (now - d->last_ts) / 1000;
    d->last_ts = now;
    d->last_cong_stat = state + 1;
    if (last < 1 || last > 5)
        return 0;
#if DIST
    struct congest_state_key_t hk = {.state = last - 1};
#if MILLISECONDS
    us /= 1000;
#endif
    hk.slot = bpf_log2l(us);
    dist.atomic_increment(hk);
#else
    d->total_changes += 1;
    u32 i = last - 1;
    if (i < 5)
        d->dura[i] += us;
#endif
    return 0;
}
"""


def port_range(text: str) -> tuple[int, int]:
    """bcc's "LOW-HIGH" (or one port) for -L/-R, in order."""
    parts = text.split("-")
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) <= 65535 for p in parts):
        raise argparse.ArgumentTypeError(f"unrecognized port range: {text!r}")
    low, high = int(parts[0]), int(parts[-1])
    return (min(low, high), max(low, high))


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcpcong", "Summarize tcp socket congestion control status duration", EXAMPLES)
    p.add_argument("-L", "--localport", type=port_range, help="trace local ports only")
    p.add_argument("-R", "--remoteport", type=port_range, help="trace the dest ports only")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-u", "--microseconds", action="store_true", help="output in microseconds")
    p.add_argument(
        "interval", nargs="?", type=common.positive_int, default=99999999, help="output interval, in seconds"
    )
    p.add_argument("outputs", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    return p


def range_skip(var: str, span: tuple[int, int] | None) -> str:
    return f"({var} < {span[0]} || {var} > {span[1]})" if span else "0"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("LPORT_SKIP", range_skip("lport", args.localport))
        .replace("DPORT_SKIP", range_skip("dport", args.remoteport))
        .replace("DIST", "1" if args.dist else "0")
        .replace("MILLISECONDS", "0" if args.microseconds else "1")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpcong", lambda: run(args))


def print_table(args: argparse.Namespace, table: Any) -> None:
    label = "us" if args.microseconds else "ms"
    names = ("Open_", "Dod_", "Rcov_", "Cwr_", "Los_")
    entries = sorted(table.items(), key=lambda kv: kv[0].lport)
    for family, width in ((socket.AF_INET, 21), (socket.AF_INET6, 32)):
        rows = [(k, v) for k, v in entries if k.family == family]
        if not rows:
            continue
        v6 = "6" if family == socket.AF_INET6 else ""
        head = ("LAddrPort" + v6, "RAddrPort" + v6, *(n + label for n in names), "Chgs")
        print(f"%-{width}s %-{width}s %-7s %-6s %-7s %-7s %-6s %-5s" % head)
        for k, v in rows:
            if not v.total_changes:
                continue
            # TCP_CA_* order is open, disorder, cwr, recovery, loss; bcc's columns swap cwr and recovery
            dura = [v.dura[i] if args.microseconds else v.dura[i] // 1000 for i in (0, 1, 3, 2, 4)]
            local = "%s/%d" % (tcp.ntop(family, k.saddr), k.lport)
            remote = "%s/%d" % (tcp.ntop(family, k.daddr), k.dport)
            print(f"%-{width}s %-{width}s %-7d %-6d %-7d %-7d %-6d %-5d" % (local, remote, *dura, v.total_changes))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing tcp congestion control status duration... Hit Ctrl-C to end.", flush=True)
        stat, dist = b["stat"], b["dist"]
        for _last in common.intervals(args.interval, args.outputs):
            print()
            if args.timestamp:
                print("%-8s" % time.strftime("%H:%M:%S"))
            if args.dist:
                unit = "usecs" if args.microseconds else "msecs"
                dist.print_log2_hist(unit, "tcp_congest_state", section_print_fn=lambda s: STATES[s])
                dist.clear()
            else:
                print_table(args, stat)
            # bcc clears the flows each interval too: a flow's first change after that starts it again
            stat.clear()
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
