#!/usr/bin/env python3
"""tcpsubnet: summarize the TCP bytes sent to IPv4 subnets, per interval.

bcc counts tcp_sendmsg's size argument with a kprobe; here the sock:sock_send_length tracepoint
(Linux 6.3+) counts the bytes each send call on a TCP socket really moved (see
rbcc._tools.tcpbytes), and kernels without it get bcc's kprobe. Each send goes to the first listed
subnet that holds its destination.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
from collections.abc import Callable, Sequence
from datetime import datetime

from rbcc._tools import common, tcpbytes

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpsubnet                 # Trace TCP sent to the default subnets:
                                        # 127.0.0.1/32,10.0.0.0/8,172.16.0.0/12,
                                        # 192.168.0.0/16,0.0.0.0/0
    rbcc tool tcpsubnet -f K            # Trace TCP sent to the default subnets
                                        # aggregated in KBytes.
    rbcc tool tcpsubnet 10.80.0.0/24    # Trace TCP sent to 10.80.0.0/24 only
    rbcc tool tcpsubnet -J              # Format the output in JSON.
"""

DEFAULT_SUBNETS = "127.0.0.1/32,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,0.0.0.0/0"

BPF_TEXT = r"""
#include <net/sock.h>

struct index_key_t {
    u32 index;
};

BPF_HASH(ipv4_send_bytes, struct index_key_t);

static __always_inline void count_send(struct sock *sk, u16 family, u64 size) {
    if (family != AF_INET)
        return;
    // the destination as the kernel stores it (network byte order), compared to masks in that order
    u32 dst = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    struct index_key_t key = {};
SUBNET_MATCHES
}

SEND_PROBE_C
"""

# bcc's -f units: the bytes counted, scaled
FORMATS: dict[str, Callable[[int], float]] = {
    "b": lambda x: x * 8,
    "k": lambda x: x * 8 / 1024,
    "m": lambda x: x * 8 / 1024**2,
    "B": lambda x: x,
    "K": lambda x: x / 1024,
    "M": lambda x: x / 1024**2,
}


def parse_subnets(text: str) -> list[tuple[str, int, int]]:
    """argparse type: "a.b.c.d/n,..." as (text, network, mask) with host-order integers."""
    subnets = []
    for item in text.split(","):
        addr, sep, bits = item.partition("/")
        if not sep:
            raise argparse.ArgumentTypeError(f"Subnet [{item}] is invalid, please refer to the examples.")
        try:
            net = struct.unpack("!I", socket.inet_aton(addr))[0]
        except OSError:
            raise argparse.ArgumentTypeError(f"Invalid net address in subnet [{item}]") from None
        if not bits.isdigit() or not 0 <= int(bits) <= 32:
            raise argparse.ArgumentTypeError(f"Invalid mask in subnet [{item}]. Must be an int between 0 and 32.")
        mask = ((1 << int(bits)) - 1) << (32 - int(bits))
        subnets.append((item, net, mask))
    return subnets


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcpsubnet", "Summarize TCP send and aggregate by subnet", EXAMPLES)
    p.add_argument(
        "subnets", nargs="?", type=parse_subnets, default=parse_subnets(DEFAULT_SUBNETS),
        help="comma separated list of subnets",
    )  # fmt: skip
    p.add_argument("-v", "--verbose", action="store_true", help="output debug statements")
    p.add_argument("-J", "--json", action="store_true", help="format output in JSON")
    p.add_argument(
        "-f", "--format", default="B", choices=list(FORMATS),
        help="[bkmBKM] format to report: bits, Kbits, Mbits, bytes, KBytes, MBytes (default B)",
    )  # fmt: skip
    p.add_argument(
        "-i", "--interval", default=1, type=common.positive_int, help="output interval, in seconds (default 1)"
    )
    return p


def bpf_text(args: argparse.Namespace, source: str = "tracepoint") -> str:
    """The C for these options and source ("tracepoint" or "kprobe": see tcpbytes; pure, no kernel
    needed)."""
    matches = []
    for index, (_, net, mask) in enumerate(args.subnets):
        n, m = socket.htonl(net), socket.htonl(mask)
        matches.append(
            f"    if (({n}U & {m}U) == (dst & {m}U)) {{\n"
            f"        key.index = {index};\n"
            f"        ipv4_send_bytes.atomic_increment(key, size);\n"
            f"        return;\n"
            f"    }}"
        )
    probe = tcpbytes.probes(source, receive=False)
    return BPF_TEXT.replace("SUBNET_MATCHES", "\n".join(matches)).replace("SEND_PROBE_C", probe)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpsubnet", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    source = "tracepoint" if args.ebpf else tcpbytes.source()
    text = bpf_text(args, source)
    if args.verbose and not args.ebpf:
        print("subnets:", [s for s, _, _ in args.subnets], file=sys.stderr)
        print(text, file=sys.stderr)
    b = common.load(args, text)
    if b is None:
        return 0
    scale = FORMATS[args.format]
    with b:
        tcpbytes.attach(b, source, receive=False)
        table = b["ipv4_send_bytes"]
        if not args.json:
            print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
        for _last in common.intervals(args.interval, None):
            now = datetime.now()
            rows = sorted(((k.index, v.value) for k, v in table.items()), key=lambda kv: kv[1], reverse=True)
            table.clear()
            if args.json:
                entries = {args.subnets[i][0]: scale(n) for i, n in rows}
                print(json.dumps({"date": now.strftime("%x"), "time": now.strftime("%X"), "entries": entries}))
            else:
                print(now.strftime("[%x %X]"))
                for i, n in rows:
                    print("%-21s %6d" % (args.subnets[i][0], scale(n)))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
