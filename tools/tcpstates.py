#!/usr/bin/env python3
"""tcpstates: trace TCP session state changes, with the time spent in the state left.

Every change comes from the sock:inet_sock_set_state tracepoint. C-PID and C-COMM are whoever was on
the CPU at the change (for changes made on packet arrival, often not the socket's owner), as in bcc.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpstates           # trace all TCP state changes
    rbcc tool tcpstates -t        # include timestamp column
    rbcc tool tcpstates -T        # include time column (HH:MM:SS)
    rbcc tool tcpstates -w        # wider columns (fit IPv6)
    rbcc tool tcpstates -stT      # csv output, with times & timestamps
    rbcc tool tcpstates -Y        # log events to the systemd journal
    rbcc tool tcpstates -L 80     # only trace local port 80
    rbcc tool tcpstates -L 80,81  # only trace local ports 80 and 81
    rbcc tool tcpstates -D 80     # only trace remote port 80
    rbcc tool tcpstates -4        # trace IPv4 family only
    rbcc tool tcpstates -6        # trace IPv6 family only
"""

JOURNAL_SOCKET = "/run/systemd/journal/socket"

BPF_TEXT = r"""
#include <net/sock.h>

struct event_t {
    u64 ts_us;
    u64 skaddr;
    u64 span_us;
    u32 pid;
    u32 oldstate;
    u32 newstate;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
    char task[TASK_COMM_LEN];
};

BPF_HASH(last, struct sock *, u64);
BPF_PERF_OUTPUT(events);

COPY_ADDRS_MACRO

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    u16 lport = args->sport;
    u16 dport = args->dport;
    if (LPORT_SKIP || DPORT_SKIP) {
        last.delete(&sk);
        return 0;
    }
    if (FAMILY_SKIP)
        return 0;

    struct event_t e = {};
    u64 now = bpf_ktime_get_ns();
    u64 *then = last.lookup(&sk);
    e.span_us = then ? (now - *then) / 1000 : 0;
    e.ts_us = now / 1000;
    e.skaddr = (u64)sk;
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.oldstate = args->oldstate;
    e.newstate = args->newstate;
    e.lport = lport;
    e.dport = dport;
    e.family = args->family;
    COPY_ADDRS(&e, args);
    bpf_get_current_comm(&e.task, sizeof(e.task));
    events.perf_submit(args, &e, sizeof(e));

    if (e.newstate == TCP_CLOSE)
        last.delete(&sk);
    else
        last.update(&sk, &now);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcpstates", "Trace TCP session state changes and durations", EXAMPLES)
    tcp.add_session_output(p)
    tcp.add_port_filters(p)
    p.add_argument("-Y", "--journal", action="store_true", help="log session state changes to the systemd journal")
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return tcp.session_filters(BPF_TEXT, args)


def formats(args: argparse.Namespace) -> tuple[str, str]:
    """bcc's (header, row) formats: 80 columns by default, wide for IPv6, or CSV."""
    if args.csv:
        return "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s", "%x,%d,%s,%s,%s,%d,%s,%d,%s,%s,%.3f"
    if args.wide:
        return (
            "%-16s %-5s %-16.16s %-2s %-26s %-5s %-26s %-5s %-11s -> %-11s %s",
            "%-16x %-5d %-16.16s %-2s %-26s %-5d %-26s %-5d %-11s -> %-11s %.3f",
        )
    return (
        "%-16s %-5s %-10.10s %s%-15s %-5s %-15s %-5s %-11s -> %-11s %s",
        "%-16x %-5d %-10.10s %s%-15s %-5d %-15s %-5d %-11s -> %-11s %.3f",
    )


def journal_record(fields: Mapping[str, str]) -> bytes:
    """One message in journald's native protocol: KEY=value lines, or KEY, a length and the raw value
    for values with a newline."""
    out = b""
    for key, value in fields.items():
        data = value.encode()
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return out


def journal_fields(e: Any, comm: str, laddr: str, raddr: str) -> dict[str, str]:
    """bcc's journal entry for one change (its OBJECT_* field names, its MESSAGE)."""
    pfx = "IPV4" if e.family == tcp.AF_INET else "IPV6"
    old, new = tcp.state_name(e.oldstate), tcp.state_name(e.newstate)
    fields = {
        "SYSLOG_IDENTIFIER": "tcpstates",
        "PRIORITY": "5",
        "_SOURCE_REALTIME_TIMESTAMP": "%d" % (time.time() * 1e6),
        "OBJECT_PID": str(e.pid),
        f"OBJECT_{pfx}_SOURCE_ADDRESS": laddr,
        "OBJECT_TCP_SOURCE_PORT": str(e.lport),
        f"OBJECT_{pfx}_DESTINATION_ADDRESS": raddr,
        "OBJECT_TCP_DESTINATION_PORT": str(e.dport),
        "OBJECT_TCP_OLD_STATE": old,
        "OBJECT_TCP_NEW_STATE": new,
        "OBJECT_TCP_SPAN_TIME": str(e.span_us),
        "MESSAGE": f"{comm} {laddr} {e.lport} → {raddr} {e.dport} {old} → {new}",
    }
    if os.geteuid() != 0:
        # as root journald adds the process's own fields for OBJECT_PID, COMM among them
        fields["OBJECT_COMM"] = comm
    return fields


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpstates", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    journal = None
    if args.journal and not args.ebpf:
        if not os.path.exists(JOURNAL_SOCKET):
            print(f"tcpstates: -Y needs systemd-journald: its socket {JOURNAL_SOCKET} is missing", file=sys.stderr)
            return 1
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    header_fmt, row_fmt = formats(args)
    with_ip = args.wide or args.csv
    times = tcp.TimeColumns(args)
    names = ("SKADDR", "C-PID", "C-COMM", "IP" if with_ip else "", "LADDR", "LPORT", "RADDR", "RPORT")
    print(times.header() + header_fmt % (*names, "OLDSTATE", "NEWSTATE", "MS"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        comm = e.task.decode("utf-8", "replace")
        columns = tcp.endpoints(e, with_ip)
        laddr, raddr = columns[1], columns[3]
        row = row_fmt % (
            e.skaddr,
            e.pid,
            comm,
            *columns,
            tcp.state_name(e.oldstate),
            tcp.state_name(e.newstate),
            e.span_us / 1000,
        )
        print(times.row(e.ts_us) + row, flush=True)
        if journal is not None:
            journal.sendto(journal_record(journal_fields(e, comm, laddr, raddr)), JOURNAL_SOCKET)

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
