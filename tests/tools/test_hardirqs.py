"""hardirqs: the C for its options, and live runs that see the disk interrupts of O_DIRECT writes the
test makes, counted and timed, against the kernel's own count in /proc/interrupts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _schedwork import direct_writes, irq_counts, sections
from _toolcheck import run_rbcc, text_of

from rbcc._tools.sched import hist_total
from rbcc.tools import hardirqs

WRITES = 50


def _text(*argv: str) -> str:
    return text_of(hardirqs, *argv)


def test_options_in_the_c() -> None:
    total = _text()
    assert "dist.atomic_increment(out, delta);" in total and "bpf_ktime_get_ns" in total
    assert "if (cpu != " not in total
    count = _text("-C")
    assert "dist.atomic_increment(out);" in count and "bpf_ktime_get_ns" not in count
    assert "out.slot = bpf_log2l(delta / 1000);" in _text("-d")
    assert "out.slot = bpf_log2l(delta / 1);" in _text("-d", "-N")
    assert "if (cpu != 1) { return 0; }" in _text("-c", "1")


def test_count_with_time_options_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert hardirqs.main(["-C", "-d"]) == 2
    assert "The --count option can't be used with time-based options" in capsys.readouterr().err


def _disk_writes(tmp_path: Path, seen: dict[str, int]) -> None:
    """The writes, and how many interrupts each handler took meanwhile, as the kernel counts them."""
    before = irq_counts()
    direct_writes(tmp_path / "irqs", WRITES)
    after = irq_counts()
    seen.update({name: n - before.get(name, 0) for name, n in after.items() if n > before.get(name, 0)})


def _disk_irq(during: dict[str, int]) -> tuple[str, int]:
    name, n = max(during.items(), key=lambda kv: kv[1])
    assert n >= WRITES, during  # each synchronous write completes with an interrupt of the disk
    return name, n


@pytest.mark.needs_root
def test_counts_the_disk_interrupts_of_the_tests_writes(tmp_path: Path) -> None:
    during: dict[str, int] = {}
    out, _ = run_interrupted(
        ["tool", "hardirqs", "-C"],
        lambda h: h == "Tracing hard irq events... Hit Ctrl-C to end.\n",
        lambda: _disk_writes(tmp_path, during),
    )
    disk, n = _disk_irq(during)
    rows = {f[0]: int(f[1]) for f in (line.split() for line in out.splitlines()[3:]) if len(f) == 2}
    assert out.splitlines()[2].split() == ["HARDIRQ", "TOTAL_count"], out
    # the tool traced all the while the writes went on; a few interrupts may find nothing to do
    assert rows.get(disk, 0) >= 0.8 * n, (out, during)


@pytest.mark.needs_root
def test_time_histograms_per_handler(tmp_path: Path) -> None:
    during: dict[str, int] = {}
    out, _ = run_interrupted(
        ["tool", "hardirqs", "-d", "-N"],
        lambda h: h == "Tracing hard irq event time... Hit Ctrl-C to end.\n",
        lambda: _disk_writes(tmp_path, during),
    )
    disk, n = _disk_irq(during)
    by_irq = sections(out, "hardirq")
    assert disk in by_irq and "nsecs" in by_irq[disk], out
    assert hist_total(by_irq[disk]) >= 0.8 * n, out


@pytest.mark.needs_root
def test_cpu_filter_counts_only_that_cpus_interrupts(tmp_path: Path) -> None:
    probe: dict[str, int] = {}
    _disk_writes(tmp_path, probe)
    disk, _ = _disk_irq(probe)
    cpu = max(range(os.cpu_count() or 1), key=lambda c: irq_counts(c).get(disk, 0))  # where the disk's go
    before = irq_counts(cpu)
    during: dict[str, int] = {}

    def writes_on_cpu() -> None:
        start = irq_counts(cpu)
        direct_writes(tmp_path / "irqs", WRITES)
        during["n"] = irq_counts(cpu).get(disk, 0) - start.get(disk, 0)

    out, _ = run_interrupted(
        ["tool", "hardirqs", "-C", "-c", str(cpu)], lambda h: h.startswith("Tracing"), writes_on_cpu
    )
    lifetime = irq_counts(cpu).get(disk, 0) - before.get(disk, 0)
    rows = {f[0]: int(f[1]) for f in (line.split() for line in out.splitlines()[3:]) if len(f) == 2}
    # at least those during the writes, at most all the kernel counted on that CPU while the tool ran
    assert 0.8 * during["n"] <= rows.get(disk, 0) <= lifetime, (out, during, lifetime)


@pytest.mark.needs_root
def test_intervals_of_total_time_with_timestamps() -> None:
    out = run_rbcc("tool", "hardirqs", "-T", "1", "2")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", out.stdout, re.M)) == 2, out.stdout
    assert len(re.findall(r"^HARDIRQ\s+TOTAL_usecs$", out.stdout, re.M)) == 2, out.stdout
