"""The TCP tools' shared helpers (rbcc._tools.tcp): port lists, C conditions, addresses, time columns."""

from __future__ import annotations

import argparse
import socket

import pytest

from rbcc._tools import tcp


def test_port_lists() -> None:
    assert tcp.port_list("80") == [80] and tcp.port_list("80,81") == [80, 81]
    for bad in ("", "80,", "http", "65536", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            tcp.port_list(bad)


def test_conditions_skip_what_the_options_leave_out() -> None:
    assert tcp.ports_skip("lport", None) == "0" and tcp.ports_skip("lport", []) == "0"
    assert tcp.ports_skip("dport", [80, 443]) == "(dport != 80 && dport != 443)"
    none = argparse.Namespace(ipv4=False, ipv6=False)
    assert tcp.family_skip("f", none) == "0"
    assert tcp.family_skip("f", argparse.Namespace(ipv4=True, ipv6=False)) == "f != AF_INET"
    assert tcp.family_skip("f", argparse.Namespace(ipv4=False, ipv6=True)) == "f != AF_INET6"


def test_addresses_from_sixteen_bytes() -> None:
    assert tcp.ntop(socket.AF_INET, bytes([10, 0, 0, 1]) + bytes(12)) == "10.0.0.1"
    assert tcp.ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "fe80::1")) == "fe80::1"
    assert tcp.ipver(socket.AF_INET) == "4" and tcp.ipver(socket.AF_INET6) == "6"
    assert tcp.state_name(1) == "ESTABLISHED" and tcp.state_name(99) == "99"


def test_time_columns_plain_and_csv() -> None:
    plain = tcp.TimeColumns(argparse.Namespace(time=True, timestamp=True, csv=False))
    assert plain.header() == "TIME     TIME(s)   "
    first, later = plain.row(5_000_000), plain.row(6_500_000)
    assert first[9:] == "0.000000  " and later[9:] == "1.500000  " and first[2] == ":"
    csv = tcp.TimeColumns(argparse.Namespace(time=False, timestamp=True, csv=True))
    assert csv.header() == "TIME(s)," and csv.row(7) == "0.000000," and csv.row(1_000_007) == "1.000000,"
