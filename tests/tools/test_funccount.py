"""funccount: its C, the one-line stop on kernel-function patterns, and live counts of the test's own
syscalls (tracepoint wildcards, one CPU's only), a test program's functions and its USDT probe (each
interval, timestamped)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _bpfutil import pinned_to_one_cpu, run_interrupted, two_cpus
from _probe_targets import build, probed
from _toolcheck import refusal_line, spawn_rbcc

from rbcc.tools import funccount


def _text(names: list[str], *argv: str) -> str:
    return funccount.bpf_text(funccount.build_parser().parse_args(list(argv)), names)


def test_one_counter_per_target_and_the_filters() -> None:
    text = _text(["syscalls:sys_enter_getppid", "syscalls:sys_enter_getpid"], "t:syscalls:sys_enter_getp*")
    assert "BPF_ARRAY(counts, u64, 2);" in text
    assert "int trace_count_1(struct tracepoint__syscalls__sys_enter_getppid *args)" in text
    assert "int loc = 1;" in text and "!= 42" not in text
    filtered = _text(["f"], "-p", "42", "-c", "1", "c:f")
    assert "(bpf_get_current_pid_tgid() >> 32) != 42" in filtered and "bpf_get_smp_processor_id() != 1" in filtered
    assert "int trace_count_0(struct pt_regs *ctx)" in filtered


@pytest.mark.without_kprobes
def test_kernel_function_patterns_stop_with_one_line() -> None:
    line = refusal_line("funccount", "vfs_read*")
    assert line.startswith("funccount: kernel function patterns need kprobes") and "t:category:event" in line


def _counts(out: str) -> dict[str, int]:
    lines = out.splitlines()
    rows = lines[lines.index(f"{'FUNC':<36} {'COUNT':>8}") + 1 :]
    return {f[0]: int(f[1]) for f in (r.split() for r in rows) if len(f) == 2}


@pytest.mark.needs_root
def test_counts_the_tests_own_syscalls_with_a_wildcard() -> None:
    def workload() -> None:
        for _ in range(7):
            os.getppid()

    out, err = run_interrupted(
        ["funccount", "-p", str(os.getpid()), "t:syscalls:sys_enter_getpp*"],
        lambda h: h.startswith('Tracing 1 functions for "t:syscalls:sys_enter_getpp*"'),
        workload,
    )
    assert _counts(out) == {"syscalls:sys_enter_getppid": 7}, out
    assert out.rstrip().endswith("Detaching...")


@pytest.mark.needs_root
def test_cpu_filter_counts_only_that_cpus_calls() -> None:
    other, counted = two_cpus()

    def workload() -> None:
        with pinned_to_one_cpu(counted):
            for _ in range(7):
                os.getppid()
        with pinned_to_one_cpu(other):
            for _ in range(5):
                os.getppid()

    out, err = run_interrupted(
        ["funccount", "-c", str(counted), "-p", str(os.getpid()), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith('Tracing 1 functions for "t:syscalls:sys_enter_getppid"'),
        workload,
    )
    # the 5 calls made on the other CPU are left out
    assert _counts(out) == {"syscalls:sys_enter_getppid": 7}, out


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("funccount"))


@pytest.mark.needs_root
def test_counts_a_programs_functions_exactly(program: Path) -> None:
    with probed(program, calls=4) as p:
        out, err = run_interrupted(
            ["funccount", "-p", str(p.pid), f"{program}:rbcc_*"],
            lambda h: h.startswith("Tracing 2 functions for"),
            p.go,
        )
    assert _counts(out) == {"rbcc_leaf": 4, "rbcc_outer": 4}, out


@pytest.mark.needs_root
def test_counts_usdt_probes_and_prints_each_interval(program: Path) -> None:
    with probed(program, calls=5) as p:
        tool = spawn_rbcc(
            "funccount",
            "-T",
            "-i",
            "1",
            "-d",
            "2",
            "-p",
            str(p.pid),
            f"u:{program}:add*",
        )
        assert tool.stdout is not None
        assert tool.stdout.readline().startswith('Tracing 1 functions for "u:')
        p.go()
        out, err = tool.communicate(timeout=30)
    assert tool.returncode == 0 and "Traceback" not in err, err
    # -i 1 -d 2: it ends by itself after two summaries, each under its time (-T); the calls land in the first
    stamp = r"(\d\d):(\d\d):(\d\d) *"
    header = f"{'FUNC':<36} {'COUNT':>8}"
    shape = rf"\n{stamp}\n{header}\n{'added':<36} {5:>8}\n\n{stamp}\n{header}\nDetaching...\n"
    found = re.fullmatch(shape, out)
    assert found, out
    h1, m1, s1, h2, m2, s2 = (int(n) for n in found.groups())
    assert ((h2 - h1) * 3600 + (m2 - m1) * 60 + s2 - s1) % 86400 in (1, 2), out
