"""tcpaccept: the C it builds for its options, and live runs that see the accepts the test makes, with
the accepting process (not the connecting one), addresses and ports."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import Session, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpaccept


def _text(*argv: str) -> str:
    return text_of(tcpaccept, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "lport != " not in plain and "family != AF_INET6" not in plain.split("||")[-1]
    assert "(lport != 80 && lport != 81)" in _text("-P", "80,81")
    assert "pid != 181" in _text("-p", "181")
    assert "|| family != AF_INET6)" in _text("-6") and "|| family != AF_INET)" in _text("-4")
    assert "mount_ns_set" in _text("--mntnsmap", "/sys/fs/bpf/x")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpaccept", "--ebpf", "-P", "22")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_exit_accept4)" in out.stdout and "lport != 22" in out.stdout


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if f and f[0][0].isdigit()]


def _accepted_by_child(server: socket.socket) -> tuple[int, int]:
    """Connect to ``server`` from this process while a forked child accepts; (child pid, client port)."""
    pid = os.fork()
    if pid == 0:
        try:
            conn, _ = server.accept()
            conn.recv(1)
        finally:
            os._exit(0)
    with socket.create_connection(server.getsockname()[:2]) as client:
        cport = client.getsockname()[1]
        client.sendall(b"x")
        os.waitpid(pid, 0)
    server.close()
    return pid, cport


def _unix_accept() -> None:
    """An accept() that is not TCP (left out)."""
    with tempfile.TemporaryDirectory() as d, socket.socket(socket.AF_UNIX) as server:
        server.bind(f"{d}/s")
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(f"{d}/s")
            server.accept()[0].close()


@pytest.mark.needs_root
def test_shows_the_accepting_process_with_time_columns() -> None:
    server = listener()
    port = server.getsockname()[1]
    done: list[tuple[int, int]] = []

    def accepts() -> None:
        _unix_accept()
        done.append(_accepted_by_child(server))

    header = lambda h: h.split() == ["TIME", "TIME(s)", "PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT"]  # noqa: E731
    seen = lambda out: any(f[-1] == str(port) for f in _rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "tcpaccept", "-T", "-t"], header, accepts, seen)
    child, cport = done[0]
    mine = [f for f in _rows(out) if f[-1] == str(port) or f[2] in (str(child), str(os.getpid()))]
    # TIME TIME(s) PID COMM IP RADDR RPORT LADDR LPORT: the child accepted; the unix accept is not shown
    assert len(mine) == 1, out + err
    row = mine[0]
    assert row[2:] == [str(child), own_comm().decode()[:12], "4", "127.0.0.1", str(cport), "127.0.0.1", str(port)]
    # TIME(s) counts from the first accept shown, which another process on the machine may have made
    assert len(row[0].split(":")) == 3 and _rows(out)[0][1] == "0.000" and float(row[1]) >= 0, out


@pytest.mark.needs_root
def test_pid_and_port_filters() -> None:
    theirs, ours, other = listener(), listener(), listener()
    done: list[Session] = []

    def accepts() -> None:
        _accepted_by_child(theirs)  # a listed port, another pid
        done.append(session(send=1, server=ours))  # shown
        done.append(session(send=1, server=other))  # ours, on a port -P leaves out

    ports = f"{theirs.getsockname()[1]},{ours.getsockname()[1]}"
    seen = lambda out: len(done) == 2 and bool(_rows(out))  # noqa: E731
    out, err = run_interrupted(
        ["tool", "tcpaccept", "-p", str(os.getpid()), "-P", ports], lambda h: "RADDR" in h, accepts, seen
    )
    (row,) = _rows(out)
    s = done[0]
    assert row == [
        str(s.pid),
        own_comm().decode()[:12],
        "4",
        "127.0.0.1",
        str(s.client_port),
        "127.0.0.1",
        str(s.server_port),
    ]


@pytest.mark.needs_root
def test_ipv6_only() -> None:
    v6 = v6_listener()
    done: list[Session] = []

    def accepts() -> None:
        done.append(session(socket.AF_INET, send=1))
        done.append(session(socket.AF_INET6, send=1, server=v6))

    seen = lambda out: len(done) == 2 and bool(_rows(out))  # noqa: E731
    out, err = run_interrupted(
        ["tool", "tcpaccept", "-6", "-p", str(os.getpid())], lambda h: "RADDR" in h, accepts, seen
    )
    (row,) = _rows(out)
    s = done[1]
    assert row[2:] == ["6", "::1", str(s.client_port), "::1", str(s.server_port)]
