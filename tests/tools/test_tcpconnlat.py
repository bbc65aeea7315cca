"""tcpconnlat: the C it builds for its options, and live runs that see the test's own connects: a fast
one, one refused, and one the kernel makes wait a second (its first SYN dropped), with its latency."""

from __future__ import annotations

import os
import socket

import pytest
from _bpfutil import own_comm, run_interrupted
from _network import SlowConnect, slow_connect
from _tcpconn import Session, in_child, listener, session
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpconnlat


def _text(*argv: str) -> str:
    return text_of(tcpconnlat, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "e.delta_us < 0" in plain
    assert "pid != 181" in _text("-p", "181")
    assert "e.delta_us < 1500" in _text("1.5") and "e.delta_us < 100" in _text("0.1")
    assert "args->family != AF_INET6" in _text("-6") and "args->family != AF_INET" in _text("-4")


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["-4", "-6"], ["-p", "me"], ["0"], ["-1"], ["x"]):
        with pytest.raises(SystemExit):
            tcpconnlat.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpconnlat", "--ebpf", "-p", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in out.stdout and "pid != 4242" in out.stdout


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if f and f[0][0].isdigit()]


@pytest.mark.needs_root
def test_sees_fast_refused_and_slow_connects_with_latency() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: refused
    refused_port = closed.getsockname()[1]
    done: list[Session] = []
    slow: list[SlowConnect] = []

    def connects() -> None:
        done.append(session())
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", refused_port))
        slow.append(slow_connect())

    def seen(out: str) -> bool:
        return bool(slow) and any(f[4] == str(slow[0].client_port) for f in _rows(out) if len(f) == 8)

    header = lambda h: h.split() == ["PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT", "LAT(ms)"]  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnlat", "-L", "-p", str(os.getpid())], header, connects, seen)
    closed.close()
    rows = [f for f in _rows(out) if len(f) == 8]
    by_lport = {f[4]: f for f in rows}
    comm = own_comm().decode()
    s, w = done[0], slow[0]
    fast = by_lport[str(s.client_port)]
    assert fast[:7] == [str(s.pid), comm, "4", "127.0.0.1", str(s.client_port), "127.0.0.1", str(s.server_port)], out
    (refused,) = [f for f in rows if f[6] == str(refused_port)]
    assert refused[:4] == [str(os.getpid()), comm, "4", "127.0.0.1"], out + err
    assert float(fast[7]) < 500
    late = by_lport.get(str(w.client_port))
    assert late, (out, w)
    assert late[6] == str(w.server_port)
    assert 900 <= float(late[7]) <= w.seconds * 1000 + 50, (out, w)


@pytest.mark.needs_root
def test_minimum_latency_and_pid_filter_leave_out_the_fast_ones() -> None:
    theirs = listener()
    done: list[object] = []

    def connects() -> None:
        done.append(in_child(server=theirs))  # another pid: left out by -p
        done.append(session())  # fast: under the 500 ms minimum
        done.append(slow_connect())

    seen = lambda out: len(done) == 3 and bool(_rows(out))  # noqa: E731
    header = lambda h: h.split()[:2] == ["TIME(s)", "PID"]  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnlat", "-t", "-p", str(os.getpid()), "500"], header, connects, seen)
    (row,) = _rows(out)
    w = done[2]
    assert isinstance(w, SlowConnect)
    assert row[0] == "0.000" and row[1] == str(os.getpid()) and row[6] == str(w.server_port), out + err
    assert float(row[7]) >= 900
