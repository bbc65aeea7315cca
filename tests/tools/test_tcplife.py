"""tcplife: the C it builds for its options, and live runs over loopback sessions the test makes, with
their exact addresses, ports, byte counts and pid."""

from __future__ import annotations

import os
import socket

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import Session, in_child, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcplife


def _text(*argv: str) -> str:
    return text_of(tcplife, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "lport != " not in plain and "dport != " not in plain and "pid != " not in plain
    assert "AF_INET6" not in plain.split("COPY_ADDRS(&e, args)")[0].split("TRACEPOINT_PROBE")[1]
    assert "(lport != 80 && lport != 81)" in _text("-L", "80,81")
    assert "(dport != 443)" in _text("-D", "443")
    assert "pid != 181" in _text("-p", "181")
    assert "args->family != AF_INET6" in _text("-6")
    assert "args->family != AF_INET" in _text("-4") and "args->family != AF_INET6" not in _text("-4")


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["-L", "80,x"], ["-D", "70000"], ["-4", "-6"], ["-p", "me"]):
        with pytest.raises(SystemExit):
            tcplife.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcplife", "--ebpf", "-D", "8080")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in out.stdout and "dport != 8080" in out.stdout


def _rows(out: str, sep: str | None = None) -> list[list[str]]:
    """The event rows (not the header: the seen() checks get the output without it, the end with it)."""
    rows = [line.split(sep) for line in out.splitlines()]
    return [f for f in rows if "PID" not in f]


@pytest.mark.needs_root
def test_sees_both_ends_of_a_session_with_their_bytes() -> None:
    done: list[Session] = []

    def mine(out: str, s: Session) -> list[list[str]]:
        ports = {str(s.server_port), str(s.client_port)}
        return [f for f in _rows(out) if len(f) == 10 and {f[4], f[6]} == ports]

    header = lambda h: h.split() == ["PID", "COMM", "IP", "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS"]  # noqa: E731
    out, err = run_interrupted(
        ["tool", "tcplife", "-w"],
        header,
        lambda: done.append(session(send=300_000, reply=100_000)),
        lambda out: bool(done) and len(mine(out, done[0])) == 2,
    )
    s = done[0]
    rows = {f[4]: f for f in mine(out, s)}
    assert set(rows) == {str(s.client_port), str(s.server_port)}, out + err
    comm = own_comm().decode()
    client, server = rows[str(s.client_port)], rows[str(s.server_port)]
    # PID COMM IP LADDR LPORT RADDR RPORT TX_KB RX_KB MS; 300000 B is 292 KiB, 100000 B is 97 KiB
    assert client[:9] == [
        str(s.pid),
        comm,
        "4",
        "127.0.0.1",
        str(s.client_port),
        "127.0.0.1",
        str(s.server_port),
        "292",
        "97",
    ]
    assert server[:9] == [
        str(s.pid),
        comm,
        "4",
        "127.0.0.1",
        str(s.server_port),
        "127.0.0.1",
        str(s.client_port),
        "97",
        "292",
    ]
    assert all(0 < float(f[9]) < 10_000 for f in (client, server))


@pytest.mark.needs_root
def test_csv_with_times_and_pid_and_remote_port_filters() -> None:
    theirs, ours, other = listener(), listener(), listener()
    done: list[Session] = []

    def sessions() -> None:
        done.append(in_child(send=5000, server=theirs))  # another pid: left out by -p
        done.append(session(send=2048, server=ours))
        done.append(session(send=4096, server=other))  # a remote port not in -D

    def rows(out: str) -> list[list[str]]:
        return [f for f in _rows(out, ",") if len(f) == 12]

    header = lambda h: h.strip() == "TIME,TIME(s),PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS"  # noqa: E731
    seen = lambda out: len(done) == 3 and bool(rows(out))  # noqa: E731
    dports = f"{theirs.getsockname()[1]},{ours.getsockname()[1]}"
    out, err = run_interrupted(
        ["tool", "tcplife", "-stT", "-p", str(os.getpid()), "-D", dports], header, sessions, seen
    )
    # -D keeps the clients' ends of the first two; -p drops the child's: one row, our client's
    (row,) = rows(out)
    s = done[1]
    assert row[2:11] == [
        str(s.pid),
        own_comm().decode(),
        "4",
        "127.0.0.1",
        str(s.client_port),
        "127.0.0.1",
        str(s.server_port),
        "2",
        "0",
    ], out + err
    assert len(row[0].split(":")) == 3 and row[1] == "0.000000"  # HH:MM:SS, then seconds since the first


@pytest.mark.needs_root
def test_ipv6_only_with_a_local_port_filter() -> None:
    v6 = v6_listener()
    v4 = listener()
    done: list[Session] = []

    def sessions() -> None:
        done.append(session(socket.AF_INET, send=1000, server=v4))
        done.append(session(socket.AF_INET6, send=3000, reply=10_000, server=v6))

    rows = lambda out: [f for f in _rows(out) if len(f) == 10]  # noqa: E731
    seen = lambda out: len(done) == 2 and bool(rows(out))  # noqa: E731
    lports = f"{v6.getsockname()[1]},{v4.getsockname()[1]}"
    out, err = run_interrupted(["tool", "tcplife", "-6", "-w", "-L", lports], lambda h: "LADDR" in h, sessions, seen)
    (row,) = rows(out)  # only the IPv6 server's end: -L picks the servers, -6 drops the IPv4 one
    s = done[1]
    assert row[2:9] == ["6", "::1", str(s.server_port), "::1", str(s.client_port), "9", "2"], out + err
