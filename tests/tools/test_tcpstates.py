"""tcpstates: the C it builds for its options, its journal records, and live runs that follow the
loopback sessions the test makes through every state, on both ends."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import Session, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpstates


def _text(*argv: str) -> str:
    return text_of(tcpstates, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "lport != " not in plain and "dport != " not in plain and "args->family != " not in plain
    assert "(lport != 80 && lport != 81)" in _text("-L", "80,81")
    assert "(dport != 443)" in _text("-D", "443")
    assert "args->family != AF_INET6" in _text("-6")
    assert "args->family != AF_INET)" in _text("-4") or "args->family != AF_INET\n" in _text("-4")


def test_journal_record_is_journalds_native_protocol() -> None:
    e = SimpleNamespace(family=socket.AF_INET, oldstate=1, newstate=4, pid=42, lport=80, dport=5000, span_us=7)
    fields = tcpstates.journal_fields(e, "nginx", "10.0.0.1", "10.0.0.2")
    assert fields["MESSAGE"] == "nginx 10.0.0.1 80 → 10.0.0.2 5000 ESTABLISHED → FIN_WAIT1"
    assert fields["OBJECT_IPV4_SOURCE_ADDRESS"] == "10.0.0.1" and fields["OBJECT_TCP_SPAN_TIME"] == "7"
    record = tcpstates.journal_record({"A": "one", "B": "two\nlines"})
    assert record == b"A=one\nB\n" + struct.pack("<Q", 9) + b"two\nlines\n"


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpstates", "--ebpf", "-L", "8080")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in out.stdout and "lport != 8080" in out.stdout


CLIENT = [
    ("CLOSE", "SYN_SENT"),
    ("SYN_SENT", "ESTABLISHED"),
    ("ESTABLISHED", "FIN_WAIT1"),
    ("FIN_WAIT1", "FIN_WAIT2"),
    ("FIN_WAIT2", "CLOSE"),
]
SERVER = [
    ("LISTEN", "SYN_RECV"),
    ("SYN_RECV", "ESTABLISHED"),
    ("ESTABLISHED", "CLOSE_WAIT"),
    ("CLOSE_WAIT", "LAST_ACK"),
    ("LAST_ACK", "CLOSE"),
]


def _rows(out: str, sep: str | None = None) -> list[list[str]]:
    return [f for f in (line.split(sep) for line in out.splitlines()) if "SKADDR" not in f and len(f) > 9]


def _steps(rows: list[list[str]], old: int, new: int) -> list[tuple[str, str]]:
    return [(f[old], f[new]) for f in rows]


@pytest.mark.needs_root
def test_follows_both_ends_of_a_session_through_their_states() -> None:
    done: list[Session] = []

    def sockets(out: str) -> dict[str, list[list[str]]]:
        # SKADDR C-PID C-COMM IP LADDR LPORT RADDR RPORT OLDSTATE -> NEWSTATE MS
        s = done[0] if done else None
        groups: dict[str, list[list[str]]] = {}
        for f in _rows(out):
            if s is not None and len(f) == 12 and str(s.server_port) in (f[5], f[7]):
                groups.setdefault(f[0], []).append(f)
        return groups

    def ended(out: str) -> bool:
        return sum(rows[-1][10] == "CLOSE" for rows in sockets(out).values()) == 3

    out, err = run_interrupted(
        ["tool", "tcpstates", "-w"],
        lambda h: h.split()[:3] == ["SKADDR", "C-PID", "C-COMM"],
        lambda: done.append(session(send=100, server_closes_first=False)),
        ended,
    )
    s = done[0]
    groups = sockets(out)
    assert len(groups) == 3, out + err  # the listener, the client, the accepted socket
    port, cport = str(s.server_port), str(s.client_port)
    by_first = {_steps(rows, 8, 10)[0]: rows for rows in groups.values()}
    listening, client, accepted = by_first[("CLOSE", "LISTEN")], by_first[CLIENT[0]], by_first[SERVER[0]]
    assert _steps(listening, 8, 10) == [("CLOSE", "LISTEN"), ("LISTEN", "CLOSE")], out
    assert listening[0][3:8] == ["4", "127.0.0.1", port, "0.0.0.0", "0"]
    assert _steps(client, 8, 10) == CLIENT, out
    # the port is bound at connect(), after SYN_SENT's change
    assert [f[5] for f in client] == ["0"] + [cport] * 4 and all(f[7] == port for f in client)
    assert _steps(accepted, 8, 10) == SERVER, out
    assert all(f[5] == port and f[7] == cport for f in accepted)
    # the test's own process connects and closes (the other changes happen on packet arrival)
    assert client[0][1] == client[2][1] == str(s.pid) and client[0][2] == own_comm().decode()
    assert all(f[0] == client[0][0] and int(f[0], 16) > 0 for f in client)
    # MS: time in the old state; the first change of a socket has none
    assert client[0][11] == "0.000" and all(float(f[11]) >= 0 for f in client)


@pytest.mark.needs_root
def test_csv_times_and_local_port_filter() -> None:
    other, ours = listener(), listener()
    done: list[Session] = []
    header = "TIME,TIME(s),SKADDR,C-PID,C-COMM,IP,LADDR,LPORT,RADDR,RPORT,OLDSTATE,NEWSTATE,MS"

    def sessions() -> None:
        done.append(session(send=10, server=other))  # another local port: left out
        done.append(session(send=10, server=ours, server_closes_first=False))

    rows = lambda out: [f for f in _rows(out, ",") if len(f) == 13]  # noqa: E731
    port = str(ours.getsockname()[1])
    closes = lambda out: sum(f[11] == "CLOSE" for f in rows(out)) == 2  # noqa: E731
    out, err = run_interrupted(
        ["tool", "tcpstates", "-stT", "-L", port], lambda h: h.strip() == header, sessions, closes
    )
    got = rows(out)
    # the listener's close and the accepted socket's five changes, all on the local port
    assert all(f[7] == port for f in got), out + err
    assert [(f[10], f[11]) for f in got if f[9] != "0"] == SERVER
    assert [(f[10], f[11]) for f in got if f[9] == "0"] == [("LISTEN", "CLOSE")]
    assert got[0][1] == "0.000000" and all(float(f[1]) >= 0 and len(f[0].split(":")) == 3 for f in got)
    assert all(f[5] == "4" for f in got)


@pytest.mark.needs_root
def test_ipv6_only_with_a_remote_port_filter() -> None:
    v6 = v6_listener()
    v4 = listener()
    done: list[Session] = []

    def sessions() -> None:
        done.append(session(socket.AF_INET, send=10, server=v4))
        done.append(session(socket.AF_INET6, send=10, server=v6, server_closes_first=False))

    rows = lambda out: [f for f in _rows(out) if len(f) == 11]  # noqa: E731
    ended = lambda out: any(f[9] == "CLOSE" for f in rows(out))  # noqa: E731
    dports = f"{v4.getsockname()[1]},{v6.getsockname()[1]}"
    out, err = run_interrupted(["tool", "tcpstates", "-6", "-D", dports], lambda h: "SKADDR" in h, sessions, ended)
    got = rows(out)
    # SKADDR C-PID C-COMM LADDR LPORT RADDR RPORT OLDSTATE -> NEWSTATE MS: only the IPv6 client's end
    assert [(f[7], f[9]) for f in got] == CLIENT, out + err
    assert all(f[3] == "::1" and f[5] == "::1" and f[6] == str(done[1].server_port) for f in got)


@contextlib.contextmanager
def _fake_journald() -> Iterator[socket.socket]:
    """A datagram socket where journald's would be (there is no journald here), removed afterwards."""
    path = Path(tcpstates.JOURNAL_SOCKET)
    made = [d for d in reversed(path.parents) if not d.exists()]
    for d in made:
        d.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        for d in reversed(made):
            d.rmdir()


@pytest.mark.needs_root
def test_journal_gets_one_record_per_change() -> None:
    if os.path.exists(tcpstates.JOURNAL_SOCKET):
        pytest.skip("systemd-journald runs here: the test would write into the real journal")
    done: list[Session] = []
    with _fake_journald() as journal:
        ours = listener()
        port = str(ours.getsockname()[1])
        closes = lambda out: sum(" CLOSE " in line for line in out.splitlines()) == 2  # noqa: E731
        out, err = run_interrupted(
            ["tool", "tcpstates", "-Y", "-L", port],
            lambda h: "SKADDR" in h,
            lambda: done.append(session(send=10, server=ours, server_closes_first=False)),
            closes,
        )
        records = []
        for _ in range(6):  # the listener's close and the accepted socket's five changes
            records.append(dict(line.split("=", 1) for line in journal.recv(65536).decode().splitlines()))
    s = done[0]
    assert [
        (r["OBJECT_TCP_OLD_STATE"], r["OBJECT_TCP_NEW_STATE"])
        for r in records
        if r["OBJECT_TCP_DESTINATION_PORT"] != "0"
    ] == SERVER
    first = next(r for r in records if r["OBJECT_TCP_NEW_STATE"] == "SYN_RECV")
    assert first["SYSLOG_IDENTIFIER"] == "tcpstates" and first["PRIORITY"] == "5"
    assert first["OBJECT_IPV4_SOURCE_ADDRESS"] == "127.0.0.1" and first["OBJECT_TCP_SOURCE_PORT"] == port
    assert first["MESSAGE"].endswith(f"127.0.0.1 {port} → 127.0.0.1 {s.client_port} LISTEN → SYN_RECV")


@pytest.mark.needs_root
def test_journal_without_journald_is_one_line() -> None:
    if os.path.exists(tcpstates.JOURNAL_SOCKET):
        pytest.skip("systemd-journald runs here: its absence cannot be seen")
    out = run_rbcc("tool", "tcpstates", "-Y")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == f"tcpstates: -Y needs systemd-journald: its socket {tcpstates.JOURNAL_SOCKET} is missing\n"
