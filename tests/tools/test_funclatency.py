"""funclatency: its C for the options, the pairing rule of tracepoints and USDT probes, the one-line stop
on kernel functions without kprobes, and live latencies the test makes: a test program's function that
sleeps 40 ms (in -m and -u), one histogram per function (-F), nested levels (-l), its USDT start/done pair,
and the test's own clock_nanosleep timed by the system-call tracepoint pair."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _functargets import build, histograms, timed
from _toolcheck import refusal_line, text_of

from rbcc._specs.pattern import parse_pattern
from rbcc._tools import funcs
from rbcc.tools import funclatency


def _text(*argv: str, count: int = 1) -> str:
    return funclatency.bpf_text(funclatency.build_parser().parse_args(list(argv)), count)


def test_the_options_show_in_the_c() -> None:
    plain = text_of(funclatency, "vfs_read")
    assert "BPF_HISTOGRAM(dist);" in plain and "delta /=" not in plain and "tgid != " not in plain
    assert "int trace_entry_0(struct pt_regs *ctx)" in plain and "trace_entry_1" not in plain
    assert "delta /= 1000000;" in _text("-m", "vfs_read") and "delta /= 1000;" in _text("-u", "vfs_read")
    assert "tgid != 181" in _text("-p", "181", "vfs_read")
    per_fn = _text("-F", "vfs_r*", count=3)
    assert "BPF_HISTOGRAM(dist, struct fn_key_t);" in per_fn and ".pid = 0}" in per_fn
    assert "int trace_entry_2(struct pt_regs *ctx)" in per_fn and "on_entry(ctx, 2)" in per_fn
    # a user library without -p: a histogram per function and process, as bcc
    assert ".pid = tgid}" in _text("c:read") and "BPF_HISTOGRAM(dist);" in _text("-p", "5", "c:read")
    nested = _text("-l", "3", "vfs_read")
    assert "#define LEVEL 3" in nested and "calls->depth = depth + 1;" in nested
    assert "LEVEL" not in _text("vfs_read") and "LEVEL" not in _text("-l", "1", "vfs_read")


def test_tracepoints_and_usdt_probes_pair_by_name() -> None:
    tps = ["syscalls:sys_enter_read", "syscalls:sys_exit_read", "syscalls:sys_enter_kill", "irq:softirq_entry"]
    tps.append("irq:softirq_exit")
    pattern = parse_pattern("t:*:*")
    found = funcs.pairs(pattern, tps, tps + ["syscalls:sys_exit_other"])
    assert [(t.entry, t.exit) for t in found] == [
        ("syscalls:sys_enter_read", "syscalls:sys_exit_read"),
        ("irq:softirq_entry", "irq:softirq_exit"),
    ]
    probes = ["query__start", "query__done", "function__entry", "function__return", "gc__begin"]
    pairs = funcs.pairs(parse_pattern("u:x:*"), probes, probes)
    expected = [("query__start", "query__done"), ("function__entry", "function__return")]
    assert [(t.entry, t.exit) for t in pairs] == expected


def test_help_states_the_pairing_rule() -> None:
    text = " ".join(funclatency.build_parser().format_help().split())
    assert "sys_exit_read" in text and "that is enter, entry, start or begin replaced" in text


@pytest.mark.without_kprobes
def test_kernel_functions_stop_with_one_line_naming_the_tracepoint_pair() -> None:
    line = refusal_line("tool", "funclatency", "vfs_read")
    assert line.startswith("funclatency: kernel functions need kprobes") and "t:syscalls:sys_enter_NAME" in line


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("funclatency"))


def _run(program: Path, plan: tuple[str, ...], *argv: str, pid: bool = True, functions: int = 1) -> str:
    with timed(program, *plan) as t:
        pid_args = ["-p", str(t.pid)] if pid else []
        out, _ = run_interrupted(
            ["tool", "funclatency", *pid_args, *[a.replace("PID", str(t.pid)) for a in argv]],
            lambda h: h.startswith(f"Tracing {functions} functions for"),
            t.go,
        )
    assert out.rstrip().endswith("Detaching..."), out
    return out.replace(str(t.pid), "PID")


@pytest.mark.needs_root
def test_a_40ms_function_lands_in_its_millisecond_and_microsecond_slots(program: Path) -> None:
    out = _run(program, ("n40", "n40", "n40"), "-m", f"{program}:rbcc_nap")
    assert histograms(out) == {"": {32: 3}}, out
    assert "avg = 4" in out and "count: 3" in out
    out = _run(program, ("n40", "n40"), "-u", f"p:{program}:rbcc_nap")
    assert histograms(out) == {"": {32768: 2}}, out


@pytest.mark.needs_root
def test_one_histogram_per_function_with_f(program: Path) -> None:
    out = _run(program, ("n40", "q", "n40", "q", "q"), "-F", "-m", f"{program}:rbcc_*", functions=3)
    assert histograms(out) == {"Function = rbcc_nap [PID]": {32: 2}, "Function = rbcc_quick [PID]": {0: 3}}, out


@pytest.mark.needs_root
def test_nested_levels_with_l_and_innermost_only_without(program: Path) -> None:
    # rbcc_nest(3, 40): three nested calls, each taking the 40 ms nap at the bottom
    out = _run(program, ("r3:40",), "-m", "-l", "3", f"{program}:rbcc_nest")
    assert histograms(out) == {"": {32: 3}}, out
    out = _run(program, ("r3:40",), "-m", f"{program}:rbcc_nest")
    assert histograms(out) == {"": {32: 1}}, out


@pytest.mark.needs_root
def test_a_usdt_start_done_pair(program: Path) -> None:
    out = _run(program, ("n40", "q", "n40"), "-m", f"u:{program}:nap__start")
    assert histograms(out) == {"": {32: 2}}, out


@pytest.mark.needs_root
def test_the_syscall_tracepoint_pair_times_the_tests_own_nanosleeps() -> None:
    def workload() -> None:
        for _ in range(3):
            time.sleep(0.04)

    out, _ = run_interrupted(
        ["tool", "funclatency", "-m", "-p", str(os.getpid()), "t:syscalls:sys_enter_clock_nanosleep"],
        lambda h: h.startswith('Tracing 1 functions for "t:syscalls:sys_enter_clock_nanosleep"'),
        workload,
    )
    # the test's own waits for the tool's output sleep 100 ms and more: they land above 63 ms
    (dist,) = histograms(out).values()
    assert dist.get(32) == 3 and not any(16 <= low < 32 for low in dist), out


@pytest.mark.needs_kprobes
def test_a_kernel_function_with_kprobes_times_a_programs_nanosleeps(program: Path) -> None:
    out = _run(program, ("n40", "q", "n40", "n40"), "-F", "-m", "do_nanosleep")
    # one section, the kernel function's, without a pid: the three naps, each at least 40 ms (a VM
    # without KVM may make them much longer)
    (section, dist), *others = histograms(out).items()
    assert not others and section == "Function = do_nanosleep", out
    assert sum(dist.values()) == 3 and min(dist) >= 32, out
