"""funcinterval: its C for the options, the one-line stop on kernel functions without kprobes, and live
intervals the test makes: a test program's function called every 40 ms (uprobe, -m and -u), its USDT
probe, and the test's own system calls made every 20 ms (tracepoint)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _functargets import build, histograms, timed
from _toolcheck import refusal_line, text_of

from rbcc.tools import funcinterval


def test_the_options_show_in_the_c() -> None:
    plain = text_of(funcinterval, "vfs_read")
    assert "BPF_HASH(start, u32, u64, 1);" in plain and "delta /=" not in plain and "tgid != " not in plain
    assert "delta /= 1000000;" in text_of(funcinterval, "-m", "vfs_read")
    assert "delta /= 1000;" in text_of(funcinterval, "-u", "c:malloc")
    assert "tgid != 181" in text_of(funcinterval, "-p", "181", "t:sched:sched_switch")


@pytest.mark.without_kprobes
def test_kernel_functions_stop_with_one_line_naming_tracepoints() -> None:
    line = refusal_line("tool", "funcinterval", "do_sys_open")
    assert line.startswith("funcinterval: kernel functions need kprobes") and "t:CATEGORY:EVENT" in line


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("funcinterval"))


def _run(program: Path, plan: tuple[str, ...], *argv: str, kind: str) -> dict[int, int]:
    with timed(program, *plan) as t:
        out, _ = run_interrupted(
            ["tool", "funcinterval", "-p", str(t.pid), *argv],
            lambda h: h.startswith(f"Tracing {kind} for"),
            t.go,
        )
    assert out.rstrip().endswith("Detaching..."), out
    (dist,) = histograms(out).values()
    return dist


def _mostly_in(dist: dict[int, int], low: int, calls: int) -> bool:
    """All ``calls - 1`` intervals counted, none below the slot at ``low``, most in it (the machine is
    shared: a late wakeup may push one into the next slot)."""
    return sum(dist.values()) == calls - 1 and min(dist) == low and dist[low] >= (calls - 1) // 2 + 1


@pytest.mark.needs_root
def test_a_function_called_every_40ms(program: Path) -> None:
    dist = _run(program, ("n40",) * 7, "-m", f"{program}:rbcc_nap", kind="uprobe function")
    assert _mostly_in(dist, 32, 7), dist
    dist = _run(program, ("n40",) * 5, "-u", f"{program}:rbcc_nap", kind="uprobe function")
    assert _mostly_in(dist, 32768, 5), dist


@pytest.mark.needs_root
def test_a_usdt_probe_fired_every_40ms(program: Path) -> None:
    dist = _run(program, ("n40", "q") * 6, "-m", f"u:{program}:nap__start", kind="USDT probe")
    assert _mostly_in(dist, 32, 6), dist


@pytest.mark.needs_root
def test_a_tracepoint_hit_every_20ms_by_the_test() -> None:
    def workload() -> None:
        for _ in range(6):
            os.getppid()
            time.sleep(0.02)

    out, _ = run_interrupted(
        ["tool", "funcinterval", "-m", "-p", str(os.getpid()), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith('Tracing tracepoint for "syscalls:sys_enter_getppid"'),
        workload,
    )
    (dist,) = histograms(out).values()
    assert _mostly_in(dist, 16, 6), out


@pytest.mark.needs_kprobes
def test_a_kernel_function_called_every_40ms(program: Path) -> None:
    dist = _run(program, ("n40",) * 6, "-m", "do_nanosleep", kind="kprobe function")
    # five intervals between the six naps, each at least 40 ms (a VM without KVM may make them longer)
    assert sum(dist.values()) == 5 and min(dist) >= 32, dist
