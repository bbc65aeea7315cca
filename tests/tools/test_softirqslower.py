"""softirqslower: the C for its options, and live runs on CPU 0 while a child pinned there sends UDP
datagrams over loopback, each raising and running a net_rx softirq on that CPU: with no threshold both
stages of those softirqs are shown, in the sender's name; with a threshold of a second, none."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from _bpfutil import child_env
from _toolcheck import text_of

from rbcc.tools import softirqslower

SENDS = 200

SENDER = textwrap.dedent(
    f"""
    import os, socket
    os.sched_setaffinity(0, {{0}})
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range({SENDS}):
        tx.sendto(b"x" * 64, rx.getsockname())
    """
)


def test_c_for_the_options() -> None:
    text = text_of(softirqslower)
    assert "now - raised >= 10000000ULL" in text and "CPU_FILTER" not in text
    text = text_of(softirqslower, "-c", "1", "250")
    assert "bpf_get_smp_processor_id() != 1" in text and "ran >= 250000ULL" in text


def _run(min_us: str) -> list[list[str]]:
    tool = subprocess.Popen(
        [sys.executable, "-m", "rbcc", "tool", "softirqslower", "-c", "0", min_us],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert tool.stdout is not None
        first = tool.stdout.readline()
        assert first.startswith(f"Tracing softirq latency higher than {min_us} us"), first
        assert tool.stdout.readline().split() == ["TIME", "STAGE", "SOFTIRQ", "LAT(us)", "CPU", "COMM"]
        subprocess.run([sys.executable, "-c", SENDER], check=True)
        tool.send_signal(2)
        out, err = tool.communicate(timeout=30)
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    assert "Traceback" not in err, err
    return [line.split() for line in out.splitlines()]


@pytest.mark.needs_root
def test_shows_both_stages_of_the_net_rx_softirqs_the_test_raises() -> None:
    rows = _run("0")
    net_rx = [r for r in rows if "net_rx" in r]
    # each datagram raises NET_RX on CPU 0, which runs it at once, in the sender's (python's) name
    runtime = [r for r in net_rx if r[1:3] == ["softirq", "runtime"]]
    raised = [r for r in net_rx if r[1:4] == ["irq(hard)", "to", "softirq"]]
    ours = [r for r in runtime if r[-1].startswith("python")]
    assert len(ours) >= SENDS * 0.9, net_rx[:20]
    assert len(raised) >= SENDS * 0.9, net_rx[:20]
    assert all(r[-2] == "0" for r in net_rx), net_rx[:20]


@pytest.mark.needs_root
def test_a_threshold_of_a_second_hides_them() -> None:
    rows = _run("1000000")
    assert not [r for r in rows if "net_rx" in r], rows
