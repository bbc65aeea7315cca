"""tcpsubnet: the C it builds for its subnets, and live runs that send a known number of bytes over
loopback: the subnet holding 127.0.0.1 shows at least that many, in bytes, KBytes and JSON."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _tcpconn import session
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcpsubnet


def _text(*argv: str) -> str:
    return text_of(tcpsubnet, *argv)


def test_subnets_become_masks_in_network_order() -> None:
    text = _text("10.0.0.0/8,127.0.0.0/8")
    ten, loop, mask8 = (socket.htonl(x) for x in (0x0A000000, 0x7F000000, 0xFF000000))
    assert f"(({ten}U & {mask8}U) == (dst & {mask8}U))" in text and "key.index = 0;" in text
    assert f"(({loop}U & {mask8}U) == (dst & {mask8}U))" in text and "key.index = 1;" in text
    assert text.count("key.index =") == 2 and "sock_recv_length" not in text
    assert _text().count("key.index =") == 5  # bcc's default subnets


def test_bad_subnets_are_refused_by_the_parser() -> None:
    for argv in (["10.0.0.0"], ["10.0.0.0/33"], ["x.y/8"], ["-f", "G"], ["-i", "0"]):
        with pytest.raises(SystemExit):
            tcpsubnet.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpsubnet", "--ebpf", "192.168.0.0/16")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sock, sock_send_length)" in out.stdout


@pytest.mark.needs_root
def test_loopback_bytes_land_in_the_loopback_subnet() -> None:
    argv = ["tool", "tcpsubnet", "-f", "K", "-i", "60", "10.0.0.0/8,127.0.0.0/8"]
    started = lambda h: h.startswith("Tracing... Output every 60 secs")  # noqa: E731
    out, err = run_interrupted(
        argv, started, lambda: [session(send=300_000, reply=100_000)], lambda o: False, timeout=1
    )
    rows = {f[0]: int(f[1]) for f in (line.split() for line in out.splitlines()) if len(f) == 2 and f[1].isdigit()}
    # 400000 B both ways, all to 127.0.0.1: 390 KiB at least (other loopback TCP may add to it)
    assert rows.get("127.0.0.0/8", 0) >= 390, out + err
    assert "10.0.0.0/8" not in rows or rows["10.0.0.0/8"] < rows["127.0.0.0/8"]


def _sent(out: str) -> int:
    """The bytes to 127.0.0.1/32 over every JSON line (one per interval) so far."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return sum(int(d["entries"].get("127.0.0.1/32", 0)) for d in lines)


@pytest.mark.needs_root
def test_json_output_in_bytes() -> None:
    # JSON has no header: the first interval's line (printed with or without traffic) says it runs
    out, err = run_interrupted(
        ["tool", "tcpsubnet", "-J", "-i", "1", "127.0.0.1/32"],
        lambda first: first.startswith("{"),
        lambda: [session(send=123_456)],
        lambda o: _sent(o) >= 123_456,
    )
    data = [json.loads(line) for line in out.splitlines()]
    assert all(set(d) == {"date", "time", "entries"} for d in data), out + err
    assert _sent(out) >= 123_456, out


# tcpsubnet as on a kernel before sock:sock_send_length (6.3), where bcc's kprobe is its source
WITHOUT_TRACEPOINTS = """import sys
from rbcc import BPF
from rbcc.tools import tcpsubnet
BPF.tracepoint_exists = staticmethod(lambda category, event: False)
sys.exit(tcpsubnet.main(sys.argv[1:]))
"""


@pytest.mark.needs_kprobes
def test_the_kprobe_source_counts_the_bytes_too(tmp_path: Path) -> None:
    script = tmp_path / "tcpsubnet_kprobes.py"
    script.write_text(WITHOUT_TRACEPOINTS)
    argv = ["run", str(script), "-J", "-i", "1", "127.0.0.1/32"]
    out, err = run_interrupted(
        argv, lambda first: first.startswith("{"), lambda: [session(send=123_456)], lambda o: _sent(o) >= 123_456
    )
    assert _sent(out) >= 123_456, out + err
