"""tcpsynbl: the C it builds, and a live run where the test fills a listener of backlog 37 (a limit
nobody else uses) with 6 unaccepted connections: the queue lengths 0..5 land in their slots."""

from __future__ import annotations

import re
import socket

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpsynbl


def test_family_filter_is_compiled_in_only_when_asked() -> None:
    assert "if (0)" in text_of(tcpsynbl)
    assert "args->family != AF_INET6" in text_of(tcpsynbl, "-6")
    assert "args->family != AF_INET)" in text_of(tcpsynbl, "-4")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpsynbl", "--ebpf")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, inet_sock_set_state)" in out.stdout


def _section(out: str, backlog: int) -> dict[int, int]:
    """The histogram of one backlog_max section, by slot low end."""
    part = out.split(f"backlog_max = {backlog}\n", 1)
    assert len(part) == 2, out
    slots = {}
    for line in part[1].splitlines()[1:]:
        m = re.match(r"\s+(\d+) -> \d+\s+: (\d+)", line)
        if not m:
            break
        slots[int(m[1])] = int(m[2])
    return slots


def _fill(family: int, host: str, backlog: int, count: int) -> None:
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen(backlog)
        clients = [socket.create_connection(server.getsockname()[:2]) for _ in range(count)]
        for c in clients:
            c.close()


@pytest.mark.needs_root
def test_a_filling_accept_queue_lands_in_its_slots() -> None:
    def fill() -> None:
        _fill(socket.AF_INET, "127.0.0.1", 37, 6)
        try:
            _fill(socket.AF_INET6, "::1", 41, 2)  # left out by -4
        except OSError:
            pass

    out, err = run_interrupted(
        ["tool", "tcpsynbl", "-4"], lambda h: h.startswith("Tracing SYN"), fill, lambda o: False, timeout=1
    )
    # queue lengths 0, 1, 2, 3, 4, 5 when each handshake completed: bcc's log2 slots 0-1, 2-3, 4-7
    assert _section(out, 37) == {0: 2, 2: 2, 4: 2}, out + err
    assert "backlog_max = 41" not in out
