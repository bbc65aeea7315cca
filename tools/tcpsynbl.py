#!/usr/bin/env python3
"""tcpsynbl: show the TCP SYN backlog as a histogram per listener's backlog limit.

The backlog is how full the listener's accept queue is when a handshake completes.

bcc reads the listener's sk_ack_backlog and sk_max_ack_backlog at tcp_v4_syn_recv_sock/
tcp_v6_syn_recv_sock with kprobes. Those functions create the connection's socket as a copy of the
listener, and sock:inet_sock_set_state reports that copy's first change (LISTEN -> SYN_RECV) before
anything resets it: its two fields are still the listener's, at the same moment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, tcp

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpsynbl          # trace syn backlog
    rbcc tool tcpsynbl -4       # trace IPv4 family only
    rbcc tool tcpsynbl -6       # trace IPv6 family only
"""

BPF_TEXT = r"""
#include <net/sock.h>

struct backlog_key_t {
    u32 backlog;
    u64 slot;
};

BPF_HISTOGRAM(dist, struct backlog_key_t);

TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    // a new connection's socket, just copied from its listener (see the docstring)
    if (args->protocol != IPPROTO_TCP || args->oldstate != TCP_LISTEN || args->newstate != TCP_SYN_RECV)
        return 0;
    if (FAMILY_SKIP)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    struct backlog_key_t key = {};
    key.backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
    key.slot = bpf_log2l(BPF_CORE_READ(sk, sk_ack_backlog));
    dist.atomic_increment(key);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcpsynbl", "Show TCP SYN backlog.", EXAMPLES)
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return BPF_TEXT.replace("FAMILY_SKIP", tcp.family_skip("args->family", args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpsynbl", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing SYN backlog size. Ctrl-C to end.", flush=True)
        common.until_interrupted()
        print()
        b["dist"].print_log2_hist("backlog", "backlog_max")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
