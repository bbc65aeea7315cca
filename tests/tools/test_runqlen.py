"""runqlen: the C for its options, occupancy arithmetic, and live runs while the test crowds CPU 0."""

from __future__ import annotations

import contextlib
import re

import pytest
from _schedwork import busy_loops, sections
from _toolcheck import run_rbcc, text_of

from rbcc.tools import runqlen

SPINNERS = 5  # on one CPU: at least 4 of them wait while one runs


def _text(*argv: str) -> str:
    return text_of(runqlen, *argv)


def test_options_in_the_c() -> None:
    assert "dist.atomic_increment(len);" in _text() and "cpu_key_t key" not in _text()
    assert "BPF_HISTOGRAM(dist, cpu_key_t);" in _text("-C") and "bpf_get_smp_processor_id()" in _text("-C")
    assert "task->se.cfs_rq->rq->nr_running" in _text()


def test_occupancy_is_the_share_of_samples_with_a_queue() -> None:
    assert runqlen.occupancy({0: 1, 1: 2, 3: 1}) == 75.0
    assert runqlen.occupancy({}) == 0.0
    assert runqlen.occupancy({0: 5}) == 0.0


def _crowded_cpu0() -> contextlib.AbstractContextManager[None]:
    return busy_loops([0] * SPINNERS)


def _run(*argv: str) -> str:
    out = run_rbcc("tool", "runqlen", *argv)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout.startswith("Sampling run queue length... Hit Ctrl-C to end.\n"), out.stdout
    return out.stdout


@pytest.mark.needs_root
def test_per_cpu_histogram_sees_the_queue_the_test_builds_on_cpu0() -> None:
    with _crowded_cpu0():
        out = _run("-C", "1", "1")
    cpu0 = sections(out, "cpu")["0"]
    rows = {int(m[0]): int(m[1]) for m in re.findall(r"^\s+(\d+)\s+: (\d+)\s+\|", cpu0, re.M)}
    samples = sum(rows.values())
    queued = sum(n for length, n in rows.items() if length >= SPINNERS - 1)
    assert samples >= 50, out  # 99 Hz for a second
    assert queued >= 0.8 * samples, out


@pytest.mark.needs_root
def test_occupancy_per_cpu_each_interval_with_timestamps() -> None:
    with _crowded_cpu0():
        out = _run("-O", "-C", "-T", "1", "2")
    cpu0 = [float(v) for v in re.findall(r"^runqocc, CPU 0\s+(\d+\.\d\d)%$", out, re.M)]
    assert len(cpu0) == 2 and all(v >= 90.0 for v in cpu0), out
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", out, re.M)) == 2, out
