"""Real loopback TCP sessions for the TCP tools' tests: known addresses, ports and byte counts."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest


@dataclass
class Session:
    family: int
    host: str
    server_port: int
    client_port: int
    pid: int


def _recv_exactly(sock: socket.socket, n: int) -> None:
    got = 0
    while got < n:
        chunk = sock.recv(min(65536, n - got))
        assert chunk, "peer closed early"
        got += len(chunk)


def listener(family: int = socket.AF_INET) -> socket.socket:
    """A listening socket on loopback, on a port the kernel picks (known before any connection)."""
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    server.listen()
    return server


def v6_listener() -> socket.socket:
    """A listening socket on ::1, or the test is skipped where this machine has no IPv6 loopback."""
    try:
        return listener(socket.AF_INET6)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback (::1) to connect over: {e}")


def session(
    family: int = socket.AF_INET,
    send: int = 0,
    reply: int = 0,
    server: socket.socket | None = None,
    server_closes_first: bool = True,
) -> Session:
    """One whole connection in this process: listen (or use ``server``), connect, accept, the client
    sends ``send`` bytes and the server ``reply`` bytes (each read fully by the other side), then both
    close."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with server or listener(family) as server:
        port = server.getsockname()[1]
        client = socket.socket(family, socket.SOCK_STREAM)
        client.connect((host, port))
        conn, _ = server.accept()
        if send:
            client.sendall(b"c" * send)
            _recv_exactly(conn, send)
        if reply:
            conn.sendall(b"s" * reply)
            _recv_exactly(client, reply)
        first, second = (conn, client) if server_closes_first else (client, conn)
        cport = client.getsockname()[1]
        first.close()
        second.recv(1)  # the FIN: the second closes from CLOSE_WAIT
        second.close()
    return Session(family, host, port, cport, os.getpid())


def in_child(family: int = socket.AF_INET, send: int = 0, server: socket.socket | None = None) -> Session:
    """The same session in a forked child, so its pid is not this process's."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            s = session(family, send, server=server)
            os.write(w, f"{s.server_port} {s.client_port}".encode())
        finally:
            os._exit(0)
    os.close(w)
    data = os.read(r, 100).decode().split()
    os.close(r)
    os.waitpid(pid, 0)
    if server is not None:
        server.close()
    return Session(family, "127.0.0.1" if family == socket.AF_INET else "::1", int(data[0]), int(data[1]), pid)
