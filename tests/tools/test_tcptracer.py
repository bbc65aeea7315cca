"""tcptracer: the C it builds for its options, and live runs that see the test's own connect, accept
and closes with their pid, addresses, ports and network namespace; -N leaves another namespace's out."""

from __future__ import annotations

import os
import socket
import time

import pytest
from _bpfutil import own_comm, run_interrupted
from _network import netns, netns_inode, session_in_netns
from _tcpconn import Session, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcptracer


def _text(*argv: str) -> str:
    return text_of(tcptracer, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "e.netns != " not in plain
    assert "if (0)" in plain and "if (0 || (family != AF_INET && family != AF_INET6))" in plain
    assert "pid != 181" in _text("-p", "181")
    assert "e.netns != 4026531840" in _text("-N", "4026531840")
    assert "if (family != AF_INET6)" in _text("-6") and "if (family != AF_INET)" in _text("-4")
    assert "sys_exit_accept4" in plain and "sock_of_fd" in plain


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcptracer", "--ebpf", "-p", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in out.stdout and "pid != 4242" in out.stdout


def _rows(out: str) -> list[list[str]]:
    rows = [line.split() for line in out.splitlines()]
    return [f for f in rows if len(f) >= 8 and (f[1].isdigit() or f[2].isdigit())]


def _started(line: str) -> bool:
    return line.startswith("Tracing TCP established connections")


@pytest.mark.needs_root
def test_sees_connect_accept_and_both_closes_with_the_netns() -> None:
    done: list[Session] = []

    def mine(out: str) -> list[list[str]]:
        if not done:
            return []
        ports = {str(done[0].server_port), str(done[0].client_port)}
        return [f for f in _rows(out) if {f[6], f[7]} == ports]

    out, err = run_interrupted(
        ["tool", "tcptracer", "-v"], _started, lambda: done.append(session()), lambda out: len(mine(out)) >= 4
    )
    s = done[0]
    comm = own_comm().decode()
    ns = str(netns_inode())
    common = [str(s.pid), comm, "4", "127.0.0.1", "127.0.0.1"]
    rows = sorted(mine(out))
    # the server closes first (FIN_WAIT1), the client after the FIN (LAST_ACK): one close each
    assert rows == sorted(
        [
            ["accept", *common, str(s.server_port), str(s.client_port), ns],
            ["close", *common, str(s.client_port), str(s.server_port), ns],
            ["close", *common, str(s.server_port), str(s.client_port), ns],
            ["connect", *common, str(s.client_port), str(s.server_port), ns],
        ]
    ), out + err


@pytest.mark.needs_root
def test_netns_filter_and_ipv6_with_timestamps() -> None:
    v6 = v6_listener()
    done: list[object] = []

    def sessions() -> None:
        with netns("tracer") as name:
            done.append(session_in_netns(name))  # another namespace: -N leaves it out
        done.append(session(socket.AF_INET6, server=v6))

    def seen(out: str) -> bool:
        return len(done) == 2 and sum(1 for f in _rows(out) if f[4] == "6") >= 4

    argv = ["tool", "tcptracer", "-t", "-N", str(netns_inode())]
    out, err = run_interrupted(argv, _started, sessions, seen)
    _, other_server, other_client = done[0]  # type: ignore[misc]
    s = done[1]
    assert isinstance(s, Session)
    rows = [f for f in _rows(out) if len(f) == 9]
    assert not [f for f in rows if str(other_server) in f[7:9]], out
    ports = {str(s.server_port), str(s.client_port)}
    kinds = sorted(f[1] for f in rows if f[2] == str(os.getpid()) and {f[7], f[8]} == ports)
    assert kinds == ["A", "C", "X", "X"], out + err
    assert all(f[5:7] == ["[::1]", "[::1]"] for f in rows if f[2] == str(os.getpid())), out
    assert float(rows[0][0]) == 0.0
    assert other_client


@pytest.mark.needs_root
def test_a_close_that_resets_is_a_close_and_a_reset_received_is_not() -> None:
    ports: list[tuple[int, int]] = []

    def reset_by_close() -> None:
        with listener() as server:
            client = socket.create_connection(server.getsockname())
            conn, _ = server.accept()
            client.sendall(b"unread")
            time.sleep(0.1)
            conn.close()  # data left unread: a RST, the server's socket straight to CLOSE
            time.sleep(0.1)  # the client's socket gets the RST: ESTABLISHED -> CLOSE, no close() of it
            ports.append((server.getsockname()[1], client.getsockname()[1]))
            client.close()

    def seen(out: str) -> bool:
        return bool(ports) and sum(1 for f in _rows(out) if str(ports[0][0]) in f[6:8]) >= 3

    out, err = run_interrupted(["tool", "tcptracer", "-p", str(os.getpid())], _started, reset_by_close, seen)
    server_port, client_port = ports[0]
    kinds = sorted((f[0], f[6]) for f in _rows(out) if {f[6], f[7]} == {str(server_port), str(client_port)})
    # connect, accept, and the server's close; the client's close() of a socket already CLOSE is no event
    assert kinds == sorted([("C", str(client_port)), ("A", str(server_port)), ("X", str(server_port))]), out + err
