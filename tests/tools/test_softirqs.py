"""softirqs: the C for its options, and live runs that see the net_rx softirqs of loopback packets the
test sends, counted and timed, against the kernel's own count in /proc/softirqs."""

from __future__ import annotations

import re

import pytest
from _bpfutil import run_interrupted
from _schedwork import loopback_packets, sections, softirq_counts
from _toolcheck import run_rbcc, text_of

from rbcc._tools.sched import hist_total
from rbcc.tools import softirqs

PACKETS = 200


def _text(*argv: str) -> str:
    return text_of(softirqs, *argv)


def test_options_in_the_c() -> None:
    total = _text()
    assert "softirq_exit" in total and "dist.atomic_increment(key, delta);" in total
    count = _text("-C")
    assert "softirq_exit" not in count and "dist.atomic_increment(key);" in count
    assert "key.slot = bpf_log2l(delta / 1000);" in _text("-d")
    assert "key.slot = bpf_log2l(delta / 1);" in _text("-d", "-N")
    assert "if (cpu != 1) { return 0; }" in _text("-c", "1")


def test_names_follow_the_kernels_vectors() -> None:
    assert softirqs.vec_to_name(3) == "net_rx" and softirqs.vec_to_name(9) == "rcu"
    assert softirqs.vec_to_name(42) == "42"
    assert softirqs.main(["-C", "-N"]) == 2


def _packets(during: dict[str, int]) -> None:
    before = softirq_counts()
    loopback_packets(PACKETS)
    during["net_rx"] = softirq_counts()["net_rx"] - before["net_rx"]


def _totals(out: str) -> dict[str, int]:
    rows = [line.split() for line in out.splitlines()[3:]]
    return {f[0]: int(f[1]) for f in rows if len(f) == 2}


@pytest.mark.needs_root
def test_counts_the_net_rx_softirqs_of_loopback_packets() -> None:
    during: dict[str, int] = {}
    out, _ = run_interrupted(
        ["tool", "softirqs", "-C"],
        lambda h: h == "Tracing soft irq events... Hit Ctrl-C to end.\n",
        lambda: _packets(during),
    )
    assert out.splitlines()[2].split() == ["SOFTIRQ", "TOTAL_count"], out
    totals = _totals(out)
    # one row per kind (a key's padding must not split them)
    assert len(totals) == len(out.splitlines()[3:]), out
    assert during["net_rx"] >= PACKETS // 2, during  # loopback runs the softirq for (nearly) every packet
    assert totals.get("net_rx", 0) >= during["net_rx"], (out, during)


@pytest.mark.needs_root
def test_time_histograms_per_kind_in_nanoseconds() -> None:
    during: dict[str, int] = {}
    out, _ = run_interrupted(
        ["tool", "softirqs", "-d", "-N"],
        lambda h: h.startswith("Tracing soft irq event time"),
        lambda: _packets(during),
    )
    by_kind = sections(out, "softirq")
    assert "net_rx" in by_kind and "nsecs" in by_kind["net_rx"], out
    assert hist_total(by_kind["net_rx"]) >= during["net_rx"], (out, during)
    assert len(by_kind) == len(set(by_kind)) and set(by_kind) <= set(softirqs.NAMES), out


@pytest.mark.needs_root
def test_cpu_filter_and_intervals_with_timestamps() -> None:
    before = softirq_counts(0)
    out = run_rbcc("tool", "softirqs", "-C", "-T", "-c", "0", "1", "2")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", out.stdout, re.M)) == 2, out.stdout
    assert len(re.findall(r"^SOFTIRQ\s+TOTAL_count$", out.stdout, re.M)) == 2, out.stdout
    lifetime = {kind: n - before[kind] for kind, n in softirq_counts(0).items()}
    seen: dict[str, int] = {}
    for f in (line.split() for line in out.stdout.splitlines()):
        if len(f) == 2 and f[1].isdigit():
            seen[f[0]] = seen.get(f[0], 0) + int(f[1])
    assert seen, out.stdout
    # CPU 0's alone: never more than the kernel counted there while the tool ran
    assert all(n <= lifetime[kind] for kind, n in seen.items()), (seen, lifetime)
