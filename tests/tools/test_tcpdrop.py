"""tcpdrop: the C it builds for its options, and live runs that see a packet the test makes the kernel
drop: data sent to a socket whose socket filter refuses everything (drop reason SOCKET_FILTER)."""

from __future__ import annotations

import ctypes
import socket
import struct
import time
from dataclasses import dataclass

import pytest
from _bpfutil import run_interrupted
from _tcpconn import listener
from _toolcheck import run_rbcc

from rbcc.tools import tcpdrop

SO_ATTACH_FILTER, SO_DETACH_FILTER = 26, 27


def _text(*argv: str, rx_sk: bool = True) -> str:
    return tcpdrop.bpf_text(tcpdrop.build_parser().parse_args(list(argv)), rx_sk)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "TRACEPOINT_PROBE(skb, kfree_skb)" in plain and "e.family != " not in plain
    assert "(struct sock *)args->rx_sk" in plain and "args->rx_sk" not in _text(rx_sk=False)
    assert "e.family != AF_INET6" in _text("-6")
    assert "e.family != AF_INET\n" in _text("-4") or "e.family != AF_INET)" in _text("-4")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpdrop", "--ebpf")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(skb, kfree_skb)" in out.stdout and "get_stackid" in out.stdout


@dataclass
class Dropped:
    client: str
    server: str


def _drop_one(family: int = socket.AF_INET) -> Dropped:
    """Send one byte to a socket whose classic BPF filter returns 0 (drop all), then let it in."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    refuse_all = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K 0
    fprog = struct.pack("HL", 1, ctypes.addressof(refuse_all))
    with listener(family) as server, socket.create_connection(server.getsockname()[:2]) as client:
        conn, _ = server.accept()
        conn.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        client.send(b"x")
        time.sleep(0.2)
        conn.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
        conn.settimeout(5)
        assert conn.recv(1) == b"x"  # the resend gets through: the connection ends cleanly
        conn.close()
        # bcc's ADDR:PORT, unbracketed for IPv6 too
        return Dropped(f"{host}:{client.getsockname()[1]}", f"{host}:{server.getsockname()[1]}")


def _events(out: str) -> list[tuple[list[str], list[str]]]:
    """(row fields, stack frames) per event: a row, its tab-indented frames, a blank line."""
    events: list[tuple[list[str], list[str]]] = []
    for line in out.splitlines():
        if line.startswith("\t") and events:
            events[-1][1].append(line.strip())
        elif line and line[0].isdigit():
            events.append((line.split(), []))
    return events


def _header(line: str) -> bool:
    return line.split() == ["TIME", "PID", "IP", "SADDR:SPORT", ">", "DADDR:DPORT", "STATE", "(FLAGS)"]


@pytest.mark.needs_root
def test_sees_a_filtered_packet_with_its_stack() -> None:
    done: list[Dropped] = []

    def mine(out: str) -> list[tuple[list[str], list[str]]]:
        return [e for e in _events(out) if done and e[0][3] == done[0].client and e[0][5] == done[0].server]

    out, err = run_interrupted(
        ["tool", "tcpdrop"], _header, lambda: done.append(_drop_one()), lambda out: bool(mine(out))
    )
    row, stack = mine(out)[0]
    # TIME PID IP SADDR:SPORT > DADDR:DPORT STATE (FLAGS): the data segment, dropped at the server
    assert row[2:] == ["4", done[0].client, ">", done[0].server, "ESTABLISHED", "(PSH|ACK)"], out + err
    assert len(row[0].split(":")) == 3 and row[1].isdigit()
    # the kernel stack, symbolized with offsets, from the drop up through IPv4's TCP receive
    assert any(f.startswith("tcp_v4_rcv+0x") for f in stack), stack
    assert all("+0x" in f for f in stack)


@pytest.mark.needs_root
def test_ipv6_only() -> None:
    try:
        listener(socket.AF_INET6).close()
    except OSError as e:
        pytest.skip(f"no IPv6 loopback (::1): {e}")
    done: list[Dropped] = []

    def ours(out: str) -> list[list[str]]:
        ends = {d.client for d in done} | {d.server for d in done}
        return [row for row, _ in _events(out) if row[3] in ends]

    workload = lambda: done.extend([_drop_one(), _drop_one(socket.AF_INET6)])  # noqa: E731
    out, err = run_interrupted(["tool", "tcpdrop", "-6"], _header, workload, lambda out: bool(ours(out)))
    rows = ours(out)
    assert rows and all(r[2] == "6" and r[3] == done[1].client and r[5] == done[1].server for r in rows), out + err
    v6 = [stack for row, stack in _events(out) if row[3] == done[1].client]
    assert any(f.startswith("tcp_v6_rcv+0x") for f in v6[0])
