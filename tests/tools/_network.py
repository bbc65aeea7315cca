"""Network events of known size and timing for the network tools' tests: a connect the kernel makes
wait about a second (its SYN dropped once, on a full accept queue), a listen with a known backlog."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


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
