"""llcstat: the C for its options, compiled and verifier-loaded; on a machine without hardware cache
counters (this VM) the one line that says so, and where they exist, the counts of a process the test
runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _toolcheck import run_rbcc, text_of

from rbcc import BPF
from rbcc.tools import llcstat

# The x86 core PMU (hybrid CPUs: cpu_core/cpu_atom) or an Arm PMU; without one there are no cache events.
PMUS = Path("/sys/bus/event_source/devices")


def _has_pmu() -> bool:
    return any((PMUS / name).exists() for name in ("cpu", "cpu_core", "cpu_atom")) or any(
        p.name.startswith("armv8_pmu") for p in PMUS.glob("*")
    )


def _text(*argv: str) -> str:
    return text_of(llcstat, *argv)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return run_rbcc("tool", "llcstat", *argv)


def test_tid_option_in_the_c() -> None:
    assert "key->tid = 0 ?" in _text() and "key->tid = 1 ?" in _text("-t")
    assert llcstat.build_parser().parse_args([]).sample_period == 100
    with pytest.raises(SystemExit):
        llcstat.build_parser().parse_args(["-c", "0"])


@pytest.mark.needs_root
def test_programs_compile_and_pass_the_verifier() -> None:
    with BPF(text=_text("-t")) as b:
        for fn in ("on_cache_miss", "on_cache_ref"):
            assert b.load_func(fn, BPF.PERF_EVENT).fd > 0


@pytest.mark.needs_root
def test_without_hardware_counters_one_line_and_status_1() -> None:
    if _has_pmu():
        pytest.skip("this machine has a hardware PMU: the no-counters path cannot be seen here")
    out = _run("1")
    assert out.returncode == 1 and out.stdout == "", (out.stdout, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert lines[0].startswith("llcstat: this machine has no hardware cache counters"), lines
    assert "PERF_COUNT_HW_CACHE_MISSES" in lines[0] and "virtual PMU" in lines[0], lines


@pytest.mark.needs_root
def test_counts_references_of_a_process_the_test_runs() -> None:
    if not _has_pmu():
        pytest.skip("no hardware PMU (no cpu/cpu_core/armv8_pmu in /sys/bus/event_source/devices): no cache counters")
    # walks 64 MiB, far more than any last-level cache, for longer than the tool runs
    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(64 << 20)\nwhile True:\n    b[::4096] = b[4096::4096] + b'x'"]
    )
    try:
        out = _run("-c", "1000", "2")
    finally:
        child.kill()
        child.wait()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Running for 2 seconds or hit Ctrl-C to end."
    assert lines[1].split() == ["PID", "NAME", "CPU", "REFERENCE", "MISS", "HIT%"]
    rows = [line.split() for line in lines[2:-1]]
    assert any(r[0] == str(child.pid) and int(r[3]) > 0 for r in rows), out.stdout
    assert lines[-1].startswith("Total References: ")
