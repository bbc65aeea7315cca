"""What the TCP tools share: port-list and address-family options turned into C conditions, one event
layout for IPv4 and IPv6 (addresses as 16 bytes, read from the tracepoints' address fields or from
the socket), the output options and columns of tcplife/tcpstates, and the time prefixes of the tools.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..tcp import tcpstate
from . import common

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6


def port_list(text: str) -> list[int]:
    """argparse type for bcc's comma-separated port lists (``-L 80,81``)."""
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port list: {text!r}") from None
    if not ports or any(not 0 <= p <= 65535 for p in ports):
        raise argparse.ArgumentTypeError(f"ports are 0..65535: {text!r}")
    return ports


def add_port_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("-L", "--localport", type=port_list, help="comma-separated list of local ports to trace.")
    p.add_argument("-D", "--remoteport", type=port_list, help="comma-separated list of remote ports to trace.")


def add_family(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
    group.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")


def add_session_output(p: argparse.ArgumentParser) -> None:
    """tcplife's and tcpstates' -T, -t, -w and -s."""
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output (seconds)")
    p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
    p.add_argument("-s", "--csv", action="store_true", help="comma separated values output")


def session_filters(text: str, args: argparse.Namespace) -> str:
    """tcplife's and tcpstates' C (an inet_sock_set_state probe) with its COPY_ADDRS macro and the
    -L/-D/-4/-6 conditions (LPORT_SKIP, DPORT_SKIP on locals ``lport``, ``dport``; FAMILY_SKIP)."""
    return (
        text.replace("COPY_ADDRS_MACRO", COPY_ADDRS)
        .replace("LPORT_SKIP", ports_skip("lport", args.localport))
        .replace("DPORT_SKIP", ports_skip("dport", args.remoteport))
        .replace("FAMILY_SKIP", family_skip("args->family", args))
    )


def ports_skip(var: str, ports: Sequence[int] | None) -> str:
    """A C condition, true when ``var`` is none of ``ports`` (so the event is skipped); "0" keeps all."""
    if not ports:
        return "0"
    return "(" + " && ".join(f"{var} != {int(p)}" for p in ports) + ")"


def family_skip(var: str, args: argparse.Namespace) -> str:
    """A C condition, true for the family -4/-6 leaves out; "0" without either."""
    if getattr(args, "ipv4", False):
        return f"{var} != AF_INET"
    if getattr(args, "ipv6", False):
        return f"{var} != AF_INET6"
    return "0"


# Copies a tracepoint's addresses into a u8[16] pair: IPv4 in the first 4 bytes, IPv6 in all 16.
# The sock, tcp and skb tracepoints all carry saddr/daddr and saddr_v6/daddr_v6 arrays.
COPY_ADDRS = r"""
#define COPY_ADDRS(e, a)                                                        \
    do {                                                                        \
        if ((a)->family == AF_INET) {                                           \
            __builtin_memcpy((e)->saddr, (a)->saddr, 4);                        \
            __builtin_memcpy((e)->daddr, (a)->daddr, 4);                        \
        } else {                                                                \
            __builtin_memcpy((e)->saddr, (a)->saddr_v6, 16);                    \
            __builtin_memcpy((e)->daddr, (a)->daddr_v6, 16);                    \
        }                                                                       \
    } while (0)
"""


# Copies a socket's addresses (``sk``, of ``family``) into an event's u8[16] pair, as COPY_ADDRS does.
READ_SK_ADDRS = r"""
#define READ_SK_ADDRS(e, sk, family)                                                    \
    do {                                                                                \
        if ((family) == AF_INET) {                                                      \
            bpf_probe_read_kernel((e)->saddr, 4, &(sk)->__sk_common.skc_rcv_saddr);     \
            bpf_probe_read_kernel((e)->daddr, 4, &(sk)->__sk_common.skc_daddr);         \
        } else {                                                                        \
            bpf_probe_read_kernel((e)->saddr, 16, &(sk)->__sk_common.skc_v6_rcv_saddr); \
            bpf_probe_read_kernel((e)->daddr, 16, &(sk)->__sk_common.skc_v6_daddr);     \
        }                                                                               \
    } while (0)
"""


def ntop(family: int, raw: bytes | Sequence[int]) -> str:
    """An address from an event's 16-byte field, as text."""
    data = bytes(raw)
    if family == AF_INET:
        return socket.inet_ntop(AF_INET, data[:4])
    return socket.inet_ntop(AF_INET6, data[:16])


def ipver(family: int) -> str:
    return "4" if family == AF_INET else "6"


def state_name(state: int) -> str:
    return tcpstate.get(state, str(state))


def endpoints(e: Any, with_ip: bool) -> tuple[str, str, int, str, int]:
    """An event's (IP version or "", local address, local port, remote address, remote port) columns."""
    return (ipver(e.family) if with_ip else "", ntop(e.family, e.saddr), e.lport, ntop(e.family, e.daddr), e.dport)


def counts_at_end(b: Any, header: str, row: Callable[[Any, int], str], most_first: bool = True) -> None:
    """bcc's count mode (bindsnoop --count, tcpconnect -c, tcpretrans -c): nothing until Ctrl-C, then
    ``header`` and a ``row(key, count)`` per key of the ``counts`` map, most counted first (tcpretrans,
    as bcc's, least first)."""
    common.until_interrupted()
    print("\n" + header)
    for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value, reverse=most_first):
        print(row(k, v.value))
    sys.stdout.flush()


class TimeColumns:
    """bcc's -T (HH:MM:SS) and -t (seconds since the first event) prefixes, plain or CSV; the plain
    formats are tcplife's and tcpstates' unless given (``time_fmt``, (``stamp_fmt``, its header's))."""

    def __init__(
        self, args: argparse.Namespace, time_fmt: str = "%-8s ", stamp_fmts: tuple[str, str] = ("%-9.6f ", "%-9s ")
    ) -> None:
        self.time = bool(getattr(args, "time", False))
        self.timestamp = bool(getattr(args, "timestamp", False))
        self.csv = bool(getattr(args, "csv", False))
        self.time_fmt = time_fmt
        self.stamp_fmt, self.stamp_header_fmt = stamp_fmts
        self.first_us: int | None = None

    def header(self) -> str:
        out = ""
        if self.time:
            out += "TIME," if self.csv else self.time_fmt % "TIME"
        if self.timestamp:
            out += "TIME(s)," if self.csv else self.stamp_header_fmt % "TIME(s)"
        return out

    def row(self, ts_us: int) -> str:
        out = ""
        if self.time:
            now = time.strftime("%H:%M:%S")
            out += "%s," % now if self.csv else self.time_fmt % now
        if self.timestamp:
            if self.first_us is None:
                self.first_us = ts_us
            delta = (ts_us - self.first_us) / 1e6
            out += "%.6f," % delta if self.csv else self.stamp_fmt % delta
        return out
