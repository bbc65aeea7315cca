"""tcprtt: the C it builds for its options, and live runs over a loopback connection whose ACKs the
test makes come 40 ms late: its RTT samples climb into the 16-63 ms slots, a plain one's stay under 2 ms."""

from __future__ import annotations

import re

import pytest
from _bpfutil import run_interrupted
from _network import delayed_acks
from _tcpconn import listener, session
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcprtt


def _text(*argv: str) -> str:
    return text_of(tcprtt, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "if (0)" in plain and "#if 0\n    srtt /= 1000" in plain and "u64 addr = 0;" in plain
    assert "sport != 80" in _text("-p", "80") and "dport != 443" in _text("-P", "443")
    assert "saddr != 16777343" in _text("-a", "127.0.0.1")  # 127.0.0.1 as the kernel's u32, read natively
    assert "daddr != 16777343" in _text("-A", "127.0.0.1")
    assert "family != AF_INET6" in _text("-6") and "#if 1\n    srtt /= 1000" in _text("-m")
    assert "u64 addr = saddr;" in _text("-b") and "u64 addr = daddr;" in _text("-B")
    assert "#if 1\n    struct sock_latency_t" in _text("-e")


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["-a", "::1"], ["-p", "70000"], ["-4", "-6"], ["-i", "0"]):
        with pytest.raises(SystemExit):
            tcprtt.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcprtt", "--ebpf", "-P", "8080")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(tcp, tcp_probe)" in out.stdout and "dport != 8080" in out.stdout


def _slots(out: str) -> dict[int, int]:
    """The histogram's counts by the slot's low end."""
    return {int(m[1]): int(m[2]) for m in re.finditer(r"^\s+(\d+) -> \d+\s+: (\d+)", out, re.M)}


def _started(line: str) -> bool:
    return line.startswith("Tracing TCP RTT")


@pytest.mark.needs_root
def test_delayed_acks_land_in_the_tens_of_milliseconds() -> None:
    server = listener()
    done: list[int] = []
    argv = ["tool", "tcprtt", "-m", "-P", str(server.getsockname()[1]), "-b", "-e"]
    out, err = run_interrupted(argv, _started, lambda: done.append(delayed_acks(server)))
    server.close()
    slots = _slots(out)
    # only the client's socket has the server's port as its remote port; it receives 12 delayed ACKs
    assert sum(slots.values()) >= 12, out + err
    assert sum(n for low, n in slots.items() if low >= 16) >= 1, out + err
    assert "Local Address = 127.0.0.1 [AVG " in out, out


@pytest.mark.needs_root
def test_a_plain_loopback_session_stays_under_two_milliseconds() -> None:
    server = listener()
    argv = ["tool", "tcprtt", "-m", "-4", "-p", str(server.getsockname()[1]), "-a", "127.0.0.1"]
    out, err = run_interrupted(argv, _started, lambda: [session(send=100_000, reply=100_000, server=server)])
    slots = _slots(out)
    # the server's end (local port = the listener's) gets the client's data: RTTs of microseconds
    assert slots.get(0, 0) >= 1 and sum(n for low, n in slots.items() if low > 0) == 0, out + err
    assert "All Addresses = *******" in out
