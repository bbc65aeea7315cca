"""Network events of known size and timing for the network tools' tests: a connect the kernel makes
wait about a second (its SYN dropped once, on a full accept queue), a listen with a known backlog."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass
class SlowConnect:
    server_port: int
    client_port: int
    seconds: float  # as the test measured it around connect()


def slow_connect() -> SlowConnect:
    """A loopback connect that takes about 1 s: the listener (backlog 0) holds one unaccepted
    connection, so the kernel drops the next SYN (its accept queue is full); the connect succeeds on
    the SYN's retransmission (the initial RTO, 1 s), after the test has accepted the first."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        addr = server.getsockname()
        with socket.create_connection(addr) as filler:
            time.sleep(0.1)  # the filler's handshake completes: the accept queue is full
            drain = threading.Timer(0.3, lambda: server.accept()[0].close())
            drain.start()
            start = time.monotonic()
            with socket.create_connection(addr, timeout=10) as slow:
                took = time.monotonic() - start
                port = slow.getsockname()[1]
                server.accept()[0].close()
            drain.join()
            filler.close()
    return SlowConnect(addr[1], port, took)


@contextlib.contextmanager
def netns(tag: str) -> Iterator[str]:
    """A network namespace of the test's own (``ip netns add``), its loopback up; deleted after."""
    if shutil.which("ip") is None:
        pytest.skip("no ip command (iproute2): cannot make a network namespace")
    name = f"rbcc-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def netns_inode(name: str | None = None) -> int:
    """The namespace number (inode) of this process's network namespace, or of the named one."""
    return os.stat(f"/run/netns/{name}" if name else "/proc/self/ns/net").st_ino


SESSION_SCRIPT = """
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
c = socket.create_connection(s.getsockname()); a, _ = s.accept()
print(s.getsockname()[1], c.getsockname()[1], flush=True)
c.close(); a.close()
"""


def session_in_netns(name: str) -> tuple[int, int, int]:
    """A loopback connect/accept/close made by a Python child in namespace ``name``:
    (its pid, the server port, the client port)."""
    child = subprocess.Popen(
        ["ip", "netns", "exec", name, sys.executable, "-c", SESSION_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    out, _ = child.communicate(timeout=30)
    server, client = out.split()
    return child.pid, int(server), int(client)


def delayed_acks(server: socket.socket, messages: int = 12, gap: float = 0.1) -> int:
    """A loopback connection to ``server`` whose every data segment is acknowledged about 40 ms late:
    the receiver is put out of quick-ACK mode (TCP_QUICKACK 0) before each 1-byte message and never
    answers, so its ACK waits for the delayed-ACK timer (40 ms at least). The client's smoothed RTT
    climbs from loopback's microseconds towards 40 ms. Returns the client's port."""
    with socket.create_connection(server.getsockname()) as client:
        conn, _ = server.accept()
        with conn:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(messages):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
                client.send(b"x")
                time.sleep(gap)
            return int(client.getsockname()[1])


SINK_SCRIPT = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen()
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
while c.recv(1 << 16):
    pass
"""


@dataclass
class Veth:
    """A veth pair from this namespace (``near``, ``host_addr``) to a namespace of the test's own
    (``netns``: ``far``, ``peer_addr``), IPv6 off on both ends so no neighbour discovery adds packets."""

    near: str
    far: str
    netns: str
    host_addr: str
    peer_addr: str


def _run_or_skip(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot build the test's network ({' '.join(cmd)}): {done.stderr.strip()}")


@contextlib.contextmanager
def veth(tag: str, queues: int = 1) -> Iterator[Veth]:
    if shutil.which("tc") is None:
        pytest.skip("no tc command (iproute2): cannot build the test's network")
    pid = os.getpid()
    near, far = f"rb{tag[:3]}{pid % 100000}a", f"rb{tag[:3]}{pid % 100000}b"
    net = 200 + sum(map(ord, tag)) % 50
    host, peer = f"10.{net}.{pid % 250}.1", f"10.{net}.{pid % 250}.2"
    with netns(tag) as name:
        try:
            q = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
            _run_or_skip(["ip", "link", "add", near, *q, "type", "veth", "peer", "name", far, *q, "netns", name])
            _run_or_skip(["ip", "addr", "add", f"{host}/30", "dev", near])
            _run_or_skip(["ip", "-n", name, "addr", "add", f"{peer}/30", "dev", far])
            for prefix, dev in ((["ip", "netns", "exec", name], far), ([], near)):
                _run_or_skip([*prefix, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"])
            _run_or_skip(["ip", "link", "set", near, "up"])
            _run_or_skip(["ip", "-n", name, "link", "set", far, "up"])
            yield Veth(near, far, name, host, peer)
        finally:
            subprocess.run(["ip", "link", "del", near], capture_output=True)


@dataclass
class LossyPath:
    """A veth to a namespace of the test's own, the host's end shaped by a token bucket small enough
    to drop packets of a bulk send; a sink in the namespace reads whatever it is sent."""

    host_addr: str
    peer_addr: str
    sink_port: int


@contextlib.contextmanager
def lossy_path(rate: str = "2mbit", limit: str = "6kb") -> Iterator[LossyPath]:
    with veth("lossy") as v:
        _run_or_skip(["tc", "qdisc", "add", "dev", v.near, "root", "tbf", "rate", rate, "burst", "4kb", "limit", limit])
        sink = subprocess.Popen(
            ["ip", "netns", "exec", v.netns, sys.executable, "-c", SINK_SCRIPT, v.peer_addr],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sink.stdout is not None
            yield LossyPath(v.host_addr, v.peer_addr, int(sink.stdout.readline()))
        finally:
            sink.kill()
            sink.wait()


def bulk_send(path: LossyPath, size: int = 400_000) -> int:
    """Send ``size`` bytes through the shaped path to its sink; returns the client's port."""
    with socket.create_connection((path.peer_addr, path.sink_port), timeout=60) as c:
        c.sendall(b"z" * size)
        port = int(c.getsockname()[1])
        c.shutdown(socket.SHUT_WR)
    return port
