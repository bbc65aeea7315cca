"""netqtop: the C, its refusals, and a live run on a veth pair the test makes (two queues each way,
IPv6 off so nothing else talks on it): the UDP datagrams of known sizes it sends out and receives
land in their size columns."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from _bpfutil import run_interrupted
from _network import veth
from _toolcheck import run_rbcc, text_of

from rbcc.tools import netqtop


def test_program_reads_the_device_name_from_the_tracepoints() -> None:
    text = text_of(netqtop)
    assert "TRACEPOINT_PROBE(net, net_dev_start_xmit)" in text and "TRACEPOINT_PROBE(net, netif_receive_skb)" in text
    assert "TP_DATA_LOC_READ_STR(dev.name, name, 16)" in text


def test_numbers_are_shortened_as_bcc_does() -> None:
    assert netqtop.to_str(999) == "999" and netqtop.to_str(2048) == "2.0K" and netqtop.to_str(3 * 1024**2) == "3.0M"
    assert netqtop.to_str(12.345) == "12.35"


def test_without_a_device_or_with_an_unknown_one_it_stops_with_one_line() -> None:
    out = run_rbcc("tool", "netqtop")
    assert out.returncode == 1 and out.stderr.strip() == "Please specify a network interface."
    out = run_rbcc("tool", "netqtop", "-n", "nosuchnic0")
    assert out.returncode == 1 and out.stderr.strip() == "netqtop: Net interface nosuchnic0 does not exist.", out.stderr


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "netqtop", "--ebpf")
    assert out.returncode == 0 and "net_dev_start_xmit" in out.stdout, out.stderr


# A UDP sink in the namespace (nothing unreachable: no ICMP replies of sizes ICMP's rate limit decides);
# asked with b"reply", it sends 5 datagrams of 300 bytes (342-byte frames) and 4 of 1300 (1342) back.
SINK_SCRIPT = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65536)
    if data == b"reply":
        for size in [300] * 5 + [1300] * 4:
            s.sendto(b"r" * size, peer)
"""


def _tables(out: str) -> dict[str, list[str]]:
    """The last TX and RX tables' Total rows."""
    totals: dict[str, list[str]] = {}
    title = ""
    for line in out.splitlines():
        if line in ("TX", "RX"):
            title = line
        elif line.strip().startswith("Total"):
            totals[title] = line.split()
    return totals


@pytest.mark.needs_root
def test_packets_of_known_sizes_land_in_their_columns() -> None:
    with veth("netq", queues=2) as v:
        sink = subprocess.Popen(
            ["ip", "netns", "exec", v.netns, sys.executable, "-c", SINK_SCRIPT], stdout=subprocess.PIPE, text=True
        )
        try:
            assert sink.stdout is not None and sink.stdout.readline() == "ready\n"
            me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            me.bind((v.host_addr, 0))
            me.settimeout(10)
            me.sendto(b"w", (v.peer_addr, 9))  # the ARP exchange, before the counted interval

            def traffic() -> None:
                for _ in range(7):
                    me.sendto(b"a" * 100, (v.peer_addr, 9))  # 142-byte frames
                for _ in range(3):
                    me.sendto(b"b" * 1200, (v.peer_addr, 9))  # 1242-byte frames
                me.sendto(b"reply", (v.peer_addr, 9))  # 47 bytes
                for _ in range(9):
                    me.recv(65536)

            argv = ["tool", "netqtop", "-n", v.near, "-i", "60", "-t"]
            out, err = run_interrupted(argv, lambda h: h.startswith("Tracing"), traffic, lambda o: False, timeout=1)
            me.close()
        finally:
            sink.kill()
            sink.wait()
    assert out.count(" QueueID") == 2, out + err
    tx, rx = _tables(out)["TX"], _tables(out)["RX"]
    # Total avg_size [0,64) [64,512) [512,2K) [2K,16K) [16K,64K) BPS PPS
    assert tx[3:6] == ["7", "3", "0"] and int(tx[2]) >= 1, out
    assert rx[3:6] == ["5", "4", "0"], out
    rows = [line.split() for line in out.splitlines() if line.startswith(" 0 ") or line.startswith(" 1 ")]
    assert len(rows) == 4, out  # two queues in each table
