#!/usr/bin/env python3
"""tcprtt: summarize TCP round-trip times (the sockets' smoothed RTT) as a histogram.

bcc reads tcp_sock's srtt_us at tcp_rcv_established with a kprobe. The tcp:tcp_probe tracepoint fires
at the start of that same function and carries the same value (srtt_us >> 3, in microseconds), with
the socket's ports, family and addresses, so nothing else is read: one sample per packet received on
an established connection's fast path, as in bcc. -a/-A and -b/-B take IPv4 addresses, as bcc's.
"""

from __future__ import annotations

import argparse
import math
import socket
import struct
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcprtt            # summarize TCP RTT
    rbcc tool tcprtt -i 1 -d 10 # print 1 second summaries, 10 times
    rbcc tool tcprtt -m -T      # summarize in millisecond, and timestamps
    rbcc tool tcprtt -p         # filter for local port
    rbcc tool tcprtt -P         # filter for remote port
    rbcc tool tcprtt -a         # filter for local address
    rbcc tool tcprtt -A         # filter for remote address
    rbcc tool tcprtt -b         # show sockets histogram by local address
    rbcc tool tcprtt -B         # show sockets histogram by remote address
    rbcc tool tcprtt -D         # show debug bpf text
    rbcc tool tcprtt -e         # show extension summary(average)
    rbcc tool tcprtt -4         # trace only IPv4 family
    rbcc tool tcprtt -6         # trace only IPv6 family
"""

BPF_TEXT = r"""
struct sock_key_t {
    u64 addr;
    u64 slot;
};

struct sock_latency_t {
    u64 latency;
    u64 count;
};

BPF_HISTOGRAM(hist_srtt, struct sock_key_t);
BPF_HASH(latency, u64, struct sock_latency_t);

TRACEPOINT_PROBE(tcp, tcp_probe) {
    u32 srtt = args->srtt;
    u16 sport = args->sport, dport = args->dport, family = args->family;
    // the addresses are struct sockaddr_in/_in6: an IPv4 address is at offset 4
    u32 saddr = 0, daddr = 0;
    if (family == AF_INET) {
        __builtin_memcpy(&saddr, &args->saddr[4], 4);
        __builtin_memcpy(&daddr, &args->daddr[4], 4);
    }
    if (FILTERS)
        return 0;
#if MILLISECONDS
    srtt /= 1000;
#endif
    u64 addr = BY_ADDR;
    struct sock_key_t key = {.addr = addr, .slot = bpf_log2l(srtt)};
    hist_srtt.atomic_increment(key);
#if EXTENDED
    struct sock_latency_t zero = {};
    struct sock_latency_t *lat = latency.lookup_or_try_init(&addr, &zero);
    if (lat) {
        __sync_fetch_and_add(&lat->latency, srtt);
        __sync_fetch_and_add(&lat->count, 1);
    }
#endif
    return 0;
}
"""


def ipv4_number(text: str) -> int:
    """An IPv4 address as the u32 the kernel stores (network byte order, read natively), as bcc."""
    try:
        return int(struct.unpack("=I", socket.inet_aton(text))[0])
    except OSError:
        raise argparse.ArgumentTypeError(f"not an IPv4 address: {text!r}") from None


def port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tcprtt", "Summarize TCP RTT as a histogram", EXAMPLES)
    p.add_argument("-i", "--interval", type=common.positive_int, help="summary interval, seconds")
    p.add_argument("-d", "--duration", type=common.positive_int, default=99999, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-p", "--lport", type=port, help="filter for local port")
    p.add_argument("-P", "--rport", type=port, help="filter for remote port")
    p.add_argument("-a", "--laddr", type=ipv4_number, help="filter for local address")
    p.add_argument("-A", "--raddr", type=ipv4_number, help="filter for remote address")
    p.add_argument("-b", "--byladdr", action="store_true", help="show sockets histogram by local address")
    p.add_argument("-B", "--byraddr", action="store_true", help="show sockets histogram by remote address")
    p.add_argument("-e", "--extension", action="store_true", help="show extension summary(average)")
    p.add_argument(
        "-D", "--debug", action="store_true", help="print BPF program before starting (for debugging purposes)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
    group.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    skips = []
    if args.lport is not None:
        skips.append(f"sport != {args.lport}")
    if args.rport is not None:
        skips.append(f"dport != {args.rport}")
    if args.laddr is not None:
        skips.append(f"saddr != {args.laddr}")
    if args.raddr is not None:
        skips.append(f"daddr != {args.raddr}")
    if args.ipv4:
        skips.append("family != AF_INET")
    if args.ipv6:
        skips.append("family != AF_INET6")
    by = "saddr" if args.byladdr else "daddr" if args.byraddr else "0"
    return (
        BPF_TEXT.replace("FILTERS", " || ".join(skips) or "0")
        .replace("MILLISECONDS", "1" if args.milliseconds else "0")
        .replace("EXTENDED", "1" if args.extension else "0")
        .replace("BY_ADDR", by)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcprtt", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), print_text=args.debug)
    if b is None:
        return 0
    label = "msecs" if args.milliseconds else "usecs"
    header = "Local Address" if args.byladdr else "Remote Addres" if args.byraddr else "All Addresses"
    interval = args.interval or args.duration
    count = max(1, math.ceil(args.duration / interval))
    with b:
        dist, lats = b["hist_srtt"], b["latency"]

        def section(addr: int) -> str:
            text = socket.inet_ntop(socket.AF_INET, struct.pack("I", addr)) if addr else "*******"
            if args.extension:
                entry = {k.value: v for k, v in lats.items()}.get(addr)
                if entry is not None and entry.count:
                    text += " [AVG %d]" % (entry.latency // entry.count)
            return text

        print("Tracing TCP RTT... Hit Ctrl-C to end.", flush=True)
        for _last in common.intervals(interval, count):
            print()
            if args.timestamp:
                print("%-8s" % time.strftime("%H:%M:%S"))
            dist.print_log2_hist(label, section_header=header, section_print_fn=section)
            sys.stdout.flush()
            dist.clear()
            lats.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
