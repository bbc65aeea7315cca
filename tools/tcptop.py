#!/usr/bin/env python3
"""tcptop: summarize TCP send/recv throughput by host (pid, addresses, ports), top-style.

bcc counts with kprobes on tcp_sendmsg and tcp_cleanup_rbuf; here the sock:sock_send_length and
sock:sock_recv_length tracepoints (Linux 6.3+) count the bytes each send/receive call on a TCP socket
really moved, when it returns (see rbcc._tools.tcpbytes); a MSG_PEEK read is not counted. Kernels
without those tracepoints get bcc's kprobes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rbcc._tools import block, common, tcp, tcpbytes
from rbcc.containers import filter_by_containers

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcptop           # trace TCP send/recv by host
    rbcc tool tcptop -C        # don't clear the screen
    rbcc tool tcptop -p 181    # only trace PID 181
    rbcc tool tcptop --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool tcptop --mntnsmap mappath   # only trace mount namespaces in the map
    rbcc tool tcptop -4        # trace IPv4 family only
    rbcc tool tcptop -6        # trace IPv6 family only
"""

BPF_TEXT = r"""
#include <net/sock.h>

struct session_key_t {
    u32 pid;
    u16 family;
    u16 lport;
    u16 dport;
    u8 saddr[16];
    u8 daddr[16];
    char name[TASK_COMM_LEN];
};

BPF_HASH(send_bytes, struct session_key_t, u64);
BPF_HASH(recv_bytes, struct session_key_t, u64);

READ_SK_ADDRS_MACRO

static __always_inline int session_of(struct sock *sk, u16 family, struct session_key_t *key) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (PID_SKIP || FAMILY_SKIP || container_should_be_filtered())
        return 0;
    key->pid = pid;
    key->family = family;
    key->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
    key->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
    READ_SK_ADDRS(key, sk, family);
    bpf_get_current_comm(&key->name, sizeof(key->name));
    return 1;
}

static __always_inline void count_send(struct sock *sk, u16 family, u64 bytes) {
    struct session_key_t key = {};
    if (session_of(sk, family, &key))
        send_bytes.increment(key, bytes);
}

static __always_inline void count_recv(struct sock *sk, u16 family, u64 bytes) {
    struct session_key_t key = {};
    if (session_of(sk, family, &key))
        recv_bytes.increment(key, bytes);
}

TCP_BYTES_PROBES_C
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcptop", "Summarize TCP send/recv throughput by host", EXAMPLES)
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-S", "--nosummary", action="store_true", help="skip system summary line")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument(
        "interval", nargs="?", default=1, type=common.positive_int, help="output interval, in seconds (default 1)"
    )
    p.add_argument("count", nargs="?", type=common.positive_int, help="number of outputs")
    common.add_containers(p)
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace, source: str = "tracepoint") -> str:
    """The C for these options and source ("tracepoint" or "kprobe": see tcpbytes; pure, no kernel
    needed)."""
    return filter_by_containers(args) + (
        BPF_TEXT.replace("TCP_BYTES_PROBES_C", tcpbytes.probes(source))
        .replace("READ_SK_ADDRS_MACRO", tcp.READ_SK_ADDRS)
        .replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("FAMILY_SKIP", tcp.family_skip("family", args))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcptop", lambda: run(args))


def print_table(b: Any) -> None:
    """One interval's sessions, most bytes first: IPv4's table, then IPv6's (wider), as bcc."""
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for index, name in enumerate(("send_bytes", "recv_bytes")):
        table = b[name]
        for k, v in table.items():
            key = (k.family, k.pid, k.name.decode("utf-8", "replace"), bytes(k.saddr), k.lport, bytes(k.daddr), k.dport)
            totals[key][index] = v.value
        table.clear()
    for family, header_fmt, row_fmt in (
        (tcp.AF_INET, "%-7s %-12s %-21s %-21s %6s %6s", "%-7d %-12.12s %-21s %-21s %6d %6d"),
        (tcp.AF_INET6, "\n%-7s %-12s %-32s %-32s %6s %6s", "%-7d %-12.12s %-32s %-32s %6d %6d"),
    ):
        rows = sorted(((k, v) for k, v in totals.items() if k[0] == family), key=lambda kv: sum(kv[1]), reverse=True)
        if not rows:
            continue
        v6 = "6" if family == tcp.AF_INET6 else ""
        print(header_fmt % ("PID", "COMM", "LADDR" + v6, "RADDR" + v6, "RX_KB", "TX_KB"))
        for (fam, pid, name, saddr, lport, daddr, dport), (sent, received) in rows:
            local = "%s:%d" % (tcp.ntop(fam, saddr), lport)
            remote = "%s:%d" % (tcp.ntop(fam, daddr), dport)
            print(row_fmt % (pid, name, local, remote, received // 1024, sent // 1024))


def run(args: argparse.Namespace) -> int:
    source = "tracepoint" if args.ebpf else tcpbytes.source()
    b = common.load(args, bpf_text(args, source))
    if b is None:
        return 0
    with b:
        tcpbytes.attach(b, source)
        print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
        for _last in common.intervals(args.interval, args.count):
            print(end="\n" if args.noclear else block.CLEAR)
            if not args.nosummary:
                with open("/proc/loadavg") as stats:
                    print("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), stats.read()))
            print_table(b)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
