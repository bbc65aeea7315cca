"""bindsnoop: the C it builds for its options, and live runs that see the test's own binds (TCP and
UDP, IPv4 and IPv6) with their address, port, options and protocol, a refused one with -E, and
--count's totals."""

from __future__ import annotations

import errno
import os
import socket

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import bindsnoop


def _text(*argv: str) -> str:
    return text_of(bindsnoop, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "uid != " not in plain and "sport != " not in plain
    assert "!0)" in plain and "#if 0\n    struct flow_key_t" in plain
    assert "(sport != 80 && sport != 81)" in _text("-P", "80,81")
    assert "pid != 181" in _text("-p", "181") and "uid != 1000" in _text("-u", "1000")
    assert "!1)" in _text("-E") and "#if 1\n    struct flow_key_t" in _text("--count")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "bindsnoop", "--ebpf", "-P", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_exit_bind)" in out.stdout and "sport != 4242" in out.stdout


def test_options_are_shown_as_bcc_does() -> None:
    assert bindsnoop.opts_text(0) == "....." and bindsnoop.opts_text(0b01001) == "F..R."
    assert bindsnoop.opts_text(0b10110) == ".TN.r"


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) >= 7 and f[0][-1].isdigit()]


def _started(line: str) -> bool:
    return line.startswith("Tracing binds")


@pytest.mark.needs_root
def test_sees_tcp_udp_and_refused_binds_with_options() -> None:
    made: list[tuple[str, int]] = []
    keep: list[socket.socket] = []

    def binds() -> None:
        tcp4 = socket.socket()
        tcp4.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp4.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
        tcp4.bind(("127.0.0.1", 0))
        tcp4.listen()
        udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        udp6.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            udp6.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback (::1) to bind to")
        with socket.socket() as taken, pytest.raises(OSError) as refused:
            taken.bind(("127.0.0.1", tcp4.getsockname()[1]))
        assert refused.value.errno == errno.EADDRINUSE
        keep.extend((tcp4, udp6))
        made.extend([("tcp4", tcp4.getsockname()[1]), ("udp6", udp6.getsockname()[1])])

    seen = lambda out: len(made) == 2 and len([f for f in _rows(out) if f[2] == str(os.getpid())]) >= 3  # noqa: E731
    out, err = run_interrupted(["tool", "bindsnoop", "-E", "-U", "-p", str(os.getpid())], _started, binds, seen)
    for s in keep:
        s.close()
    uid, pid, comm = str(os.getuid()), str(os.getpid()), own_comm().decode()
    (_, p4), (_, p6) = made
    rows = sorted(f for f in _rows(out) if f[2] == pid)
    # UID RC PID COMM PROT ADDR PORT OPTS IF
    assert rows == sorted(
        [
            [uid, "0", pid, comm, "TCP", "127.0.0.1", str(p4), "F..R.", "0"],
            [uid, "0", pid, comm, "UDP", "::1", str(p6), "....r", "0"],
            [uid, str(-errno.EADDRINUSE), pid, comm, "TCP", "127.0.0.1", str(p4), ".....", "0"],
        ]
    ), out + err


@pytest.mark.needs_root
def test_port_filter_leaves_out_other_ports_and_errors_without_e() -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    port = listening.getsockname()[1]

    def binds() -> None:
        with socket.socket() as b, pytest.raises(OSError):
            b.bind(("127.0.0.1", port))  # refused: not shown without -E
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            other.bind(("127.0.0.1", 0))  # another port: left out by -P
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", port))  # UDP's ports are another space: this one is free

    seen = lambda out: any(f[5] == str(port) for f in _rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "bindsnoop", "-t", "-P", str(port)], _started, binds, seen)
    listening.close()
    rows = [f for f in _rows(out) if f[1] == str(os.getpid())]
    assert [f[3:7] for f in rows] == [["UDP", "127.0.0.1", str(port), "....."]], out + err
    assert rows[0][0] == "0.000000"


@pytest.mark.needs_root
def test_count_totals_per_address_and_port() -> None:
    port: list[int] = []

    def binds() -> None:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port.append(a.getsockname()[1])
            a.listen()
            with socket.socket() as b, pytest.raises(OSError):
                b.bind(("127.0.0.1", port[0]))  # refused: not counted
        for _ in range(3):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port[0]))

    # --count prints at Ctrl-C only: run the whole workload, then stop
    out, err = run_interrupted(["tool", "bindsnoop", "--count"], _started, binds, lambda out: False, timeout=1)
    lines = [line.split() for line in out.splitlines()]
    assert ["LADDR", "LPORT", "BINDS"] in lines, out + err
    assert ["127.0.0.1", str(port[0]), "4"] in lines, out  # 1 TCP + 3 UDP binds that succeeded
