"""tcpconnect: the C it builds for its options, and live runs that see the test's own connects (and a
child's, and a refused one) with their exact addresses, ports, pid and uid; -c's per-flow counts."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import Session, in_child, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc import BPF
from rbcc.containers import filter_by_containers
from rbcc.tools import tcpconnect


def _text(*argv: str) -> str:
    return text_of(tcpconnect, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "uid != " not in plain and "dport != " not in plain
    assert "#if 0" in plain.replace("#if COUNT_MODE", "")  # events, not counts
    assert "#if 1" in _text("-c")
    assert "(dport != 80 && dport != 81)" in _text("-P", "80,81")
    assert "pid != 181" in _text("-p", "181") and "uid != 1000" in _text("-u", "1000")
    assert "args->family != AF_INET6" in _text("-6")
    assert "cgroupset" in _text("--cgroupmap", "/sys/fs/bpf/x")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpconnect", "--ebpf", "-P", "443")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_exit_connect)" in out.stdout and "dport != 443" in out.stdout


def _started(line: str) -> bool:
    return line.startswith("Tracing connect ... Hit Ctrl-C to end")


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if f and f[0][0].isdigit()]


@pytest.mark.needs_root
def test_sees_a_session_and_a_refused_connect_with_ports_uid_and_time() -> None:
    # a port bound but never listened on: refused, and nobody else can take it meanwhile
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    done: list[Session] = []

    def connects() -> None:
        done.append(session(send=10))
        with socket.socket() as s:
            with pytest.raises(ConnectionRefusedError):
                s.connect(("127.0.0.1", refused_port))
            done.append(Session(socket.AF_INET, "127.0.0.1", refused_port, s.getsockname()[1], os.getpid()))

    seen = lambda out: len(done) == 2 and {f[-1] for f in _rows(out)} >= {str(d.server_port) for d in done}  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnect", "-t", "-L", "-U"], _started, connects, seen)
    assert out.splitlines()[1].split() == ["TIME(s)", "UID", "PID", "COMM", "IP", "SADDR", "LPORT", "DADDR", "DPORT"]
    rows = {f[-1]: f for f in _rows(out)}
    comm = own_comm().decode()[:12]
    for d in done:
        # TIME(s) UID PID COMM IP SADDR LPORT DADDR DPORT
        row = rows[str(d.server_port)]
        assert row[1:] == ["0", str(d.pid), comm, "4", "127.0.0.1", str(d.client_port), "127.0.0.1", str(d.server_port)]
        assert 0 <= float(row[0]) < 10
    assert rows[str(done[0].server_port)][0] == "0.000"
    closed.close()


@pytest.mark.needs_root
def test_pid_and_port_filters() -> None:
    theirs, ours, other = listener(), listener(), listener()
    done: list[Session] = []

    def connects() -> None:
        done.append(in_child(send=10, server=theirs))  # a listed port, but another pid
        done.append(session(send=10, server=ours))  # shown
        done.append(session(send=10, server=other))  # ours, to a port -P leaves out

    ports = f"{theirs.getsockname()[1]},{ours.getsockname()[1]}"
    seen = lambda out: len(done) == 3 and bool(_rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnect", "-p", str(os.getpid()), "-P", ports], _started, connects, seen)
    # PID COMM IP SADDR DADDR DPORT
    (row,) = _rows(out)
    assert row == [str(os.getpid()), own_comm().decode()[:12], "4", "127.0.0.1", "127.0.0.1", str(done[1].server_port)]


@pytest.mark.needs_root
def test_uid_filter_sees_a_child_that_dropped_to_nobody() -> None:
    server = listener()
    port = server.getsockname()[1]
    pids: list[int] = []

    def connect_as_nobody() -> None:
        "localhost".encode("idna")  # the codec, loaded now: nobody cannot read this Python's files
        pid = os.fork()
        if pid == 0:
            try:
                os.setuid(65534)
                socket.create_connection(("127.0.0.1", port)).close()
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        pids.append(pid)
        socket.create_connection(("127.0.0.1", port)).close()  # ours, as root: left out

    seen = lambda out: bool(pids) and bool(_rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnect", "-U", "-u", "65534"], _started, connect_as_nobody, seen)
    server.close()
    (row,) = _rows(out)
    assert row[:2] == ["65534", str(pids[0])] and row[-1] == str(port)


@pytest.mark.needs_root
def test_ipv6_only() -> None:
    v6 = v6_listener()
    done: list[Session] = []

    def connects() -> None:
        done.append(session(socket.AF_INET, send=1))
        done.append(session(socket.AF_INET6, send=1, server=v6))

    seen = lambda out: len(done) == 2 and any(f[-1] == str(done[1].server_port) for f in _rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "tcpconnect", "-6", "-L"], _started, connects, seen)
    ours = [f for f in _rows(out) if f[0] == str(os.getpid())]
    assert ours == [
        [
            str(os.getpid()),
            own_comm().decode()[:12],
            "6",
            "::1",
            str(done[1].client_port),
            "::1",
            str(done[1].server_port),
        ]
    ]


@pytest.mark.needs_root
def test_count_prints_connects_per_flow_at_ctrl_c() -> None:
    busy, quiet = listener(), listener()
    busy.listen(8)

    def connects() -> None:
        for _ in range(3):
            socket.create_connection(("127.0.0.1", busy.getsockname()[1])).close()
        socket.create_connection(("127.0.0.1", quiet.getsockname()[1])).close()

    out, err = run_interrupted(["tool", "tcpconnect", "-c"], _started, connects)
    lines = out.splitlines()
    at = lines.index("") + 1
    assert lines[at].split() == ["LADDR", "RADDR", "RPORT", "CONNECTS"], out
    flows = {(f[0], f[1], f[2]): int(f[3]) for f in (line.split() for line in lines[at + 1 :])}
    assert flows[("127.0.0.1", "127.0.0.1", str(busy.getsockname()[1]))] == 3, out
    assert flows[("127.0.0.1", "127.0.0.1", str(quiet.getsockname()[1]))] == 1, out
    busy.close()
    quiet.close()


@pytest.mark.needs_root
def test_mntnsmap_keeps_only_the_chosen_mount_namespaces(pin_path: Path) -> None:
    own = os.stat("/proc/self/ns/mnt").st_ino
    options = tcpconnect.build_parser().parse_args(["--mntnsmap", str(pin_path)])

    def rows_with(chosen: int) -> tuple[list[list[str]], Session]:
        # the pinned map, filled the way a container manager would
        with BPF(text=filter_by_containers(options)) as b:
            b["mount_ns_set"][ctypes.c_uint64(chosen)] = ctypes.c_uint32(1)
        done: list[Session] = []
        out, err = run_interrupted(
            ["tool", "tcpconnect", "-p", str(os.getpid()), "--mntnsmap", str(pin_path)],
            _started,
            lambda: done.append(session(send=1)),
            lambda out: bool(_rows(out)),
            timeout=1.5,
        )
        pin_path.unlink()
        return _rows(out), done[0]

    rows, _ = rows_with(own + 1)
    assert rows == []
    rows, s = rows_with(own)
    assert [f[-1] for f in rows] == [str(s.server_port)]
