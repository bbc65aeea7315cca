"""solisten: the C it builds for its options, and live runs that see the test's own listen() calls with
their backlog (as given, and capped at somaxconn), port, address and namespace; -n and -p leave out
another namespace's and another pid's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import own_comm, run_interrupted
from _network import netns, netns_inode
from _toolcheck import run_rbcc, text_of

from rbcc.tools import solisten


def _text(*argv: str) -> str:
    return text_of(solisten, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "e.netns != " not in plain
    assert "pid != 181" in _text("-p", "181") and "e.netns != 4242" in _text("--netns", "4242")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "solisten", "--ebpf", "-p", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_exit_listen)" in out.stdout and "pid != 4242" in out.stdout


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if f and f[0].isdigit()]


@pytest.mark.needs_root
def test_sees_listens_with_backlog_port_address_and_netns() -> None:
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    made: list[tuple[int, int, int]] = []
    keep: list[socket.socket] = []

    def listens() -> None:
        a = socket.socket()
        a.bind(("127.0.0.1", 0))
        a.listen(17)
        b = socket.socket(socket.AF_INET6)
        try:
            b.listen(somaxconn + 1000)  # unbound: listen() picks the port; the backlog is capped
        except OSError:
            pytest.skip("no IPv6: cannot listen on an IPv6 socket")
        keep.extend((a, b))
        made.extend([(a.getsockname()[1], 17, 4), (b.getsockname()[1], somaxconn, 6)])

    def seen(out: str) -> bool:
        return len(made) == 2 and {str(p) for p, _, _ in made} <= {f[5] for f in _rows(out) if len(f) == 7}

    out, err = run_interrupted(
        ["tool", "solisten", "--show-netns", "-p", str(os.getpid())], lambda h: "PROTO" in h, listens, seen
    )
    for s in keep:
        s.close()
    rows = {f[5]: f for f in _rows(out) if len(f) == 7}
    comm, ns = own_comm().decode(), str(netns_inode())
    (p4, b4, _), (p6, b6, _) = made
    assert rows[str(p4)] == [str(os.getpid()), comm, ns, "TCPv4", "17", str(p4), "127.0.0.1"], out + err
    assert rows[str(p6)] == [str(os.getpid()), comm, ns, "TCPv6", str(b6), str(p6), "::"], out + err


LISTEN_SCRIPT = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(3); print(s.getsockname()[1])"


@pytest.mark.needs_root
def test_netns_filter_leaves_out_another_namespace() -> None:
    ports: list[str] = []

    def listens() -> None:
        with netns("solisten") as name:
            out = subprocess.run(
                ["ip", "netns", "exec", name, sys.executable, "-c", LISTEN_SCRIPT],
                capture_output=True,
                text=True,
                check=True,
            )
            ports.append(out.stdout.strip())
        here = subprocess.run([sys.executable, "-c", LISTEN_SCRIPT], capture_output=True, text=True, check=True)
        ports.append(here.stdout.strip())

    seen = lambda out: len(ports) == 2 and any(f[4] == ports[1] for f in _rows(out))  # noqa: E731
    out, err = run_interrupted(["tool", "solisten", "-n", str(netns_inode())], lambda h: "PROTO" in h, listens, seen)
    rows = [f for f in _rows(out) if len(f) == 6]
    assert [f[2:] for f in rows if f[4] == ports[1]] == [["TCPv4", "3", ports[1], "127.0.0.1"]], out + err
    assert not [f for f in rows if f[4] == ports[0]], out
