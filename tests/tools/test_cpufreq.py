"""cpufreq: its linear histogram text, the program counting perf samples at the frequency it holds for
a CPU, the one line it ends with on a machine without cpufreq (this one and the test VMs), and a
whole run where cpufreq exists."""

from __future__ import annotations

import os
import time

import pytest
from _bpfutil import own_comm, pinned_to_one_cpu, run_interrupted
from _toolcheck import refusal_line, text_of

from rbcc import BPF
from rbcc.perf import PerfSWConfig, PerfType
from rbcc.tools import cpufreq

HAS_CPUFREQ = os.path.exists("/sys/devices/system/cpu/cpu0/cpufreq")


def test_linear_histogram(capsys: pytest.CaptureFixture[str]) -> None:
    cpufreq.print_linear("syswide", {12: 10, 14: 5})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["syswide", ":", "count", "distribution"]
    assert [line.split()[:3] for line in lines[1:]] == [["2400", ":", "10"], ["2600", ":", "0"], ["2800", ":", "5"]]
    assert lines[1].endswith("|" + "*" * 40 + "|") and lines[3].endswith("|" + "*" * 20 + " " * 20 + "|")


@pytest.mark.needs_root
def test_samples_land_at_the_frequency_held_for_their_cpu() -> None:
    b = BPF(text=text_of(cpufreq))
    with b, pinned_to_one_cpu() as cpu:
        freqs = b["freqs_mhz"]
        freqs[freqs.Key(cpu)] = freqs.Leaf(2450)  # bucket 2400-2599 MHz
        b.attach_perf_event(
            ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="do_sample", sample_freq=99, cpu=cpu
        )
        # half a second on the CPU (not of wall time: the machine may be busy), where samples find it
        end, give_up = time.process_time() + 0.5, time.monotonic() + 20
        while time.process_time() < end and time.monotonic() < give_up:
            pass
        syswide = {k.value: v.value for k, v in b["syswide"].items() if v.value}
        mine = {k.slot: v.value for k, v in b["hists"].items() if k.comm == own_comm()}
    assert list(syswide) == [12] and syswide[12] >= 10, syswide
    assert list(mine) == [12] and mine[12] >= 5, mine


@pytest.mark.needs_root
def test_without_cpufreq_it_says_so_in_one_line() -> None:
    if HAS_CPUFREQ:
        pytest.skip("this machine has cpufreq: nothing to refuse")
    line = refusal_line("tool", "cpufreq", "-d", "1")
    assert line.startswith("cpufreq: needs cpufreq") and "/sys/devices/system/cpu/cpu0/cpufreq" in line


@pytest.mark.needs_root
def test_a_whole_run_where_cpufreq_exists() -> None:
    if not HAS_CPUFREQ:
        pytest.skip("no cpufreq on this machine (/sys/devices/system/cpu/cpu0/cpufreq): no frequency to sample")

    def spin() -> None:
        end = time.monotonic() + 1
        while time.monotonic() < end:
            pass

    out, _ = run_interrupted(["tool", "cpufreq", "-d", "2"], lambda h: h.startswith("Sampling CPU freq"), spin)
    assert "syswide" in out and "distribution" in out, out
