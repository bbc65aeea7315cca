"""funcslower: its C for the options, the one-line stops (kernel functions without kprobes, a malformed
function), and live: a test program's 40 ms call shows with its pid, comm, latency, return value and
arguments while its fast call does not; its stack folded (-f -U)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _functargets import build, timed
from _toolcheck import refusal_line, text_of

from rbcc.tools import funcslower


def test_the_options_show_in_the_c() -> None:
    plain = text_of(funcslower, "vfs_write")
    assert "if (delta < 1000000)" in plain and "PT_REGS_PARM1" not in plain and "stacks" not in plain
    assert "int trace_entry_0(struct pt_regs *ctx)" in plain and "tgid != " not in plain
    two = text_of(funcslower, "-m", "10", "-p", "135", "-a", "2", "c:malloc", "c:free")
    assert "if (delta < 10000000)" in two and "tgid != 135" in two and "PT_REGS_PARM6(ctx)" in two
    assert "int trace_entry_1(struct pt_regs *ctx)" in two and "on_entry(ctx, 1)" in two
    assert "if (delta < 2500)" in text_of(funcslower, "-u", "2.5", "c:open")
    stacks = text_of(funcslower, "-U", "c:open")
    assert "BPF_STACK_TRACE(stacks, 2048);" in stacks and "BPF_F_USER_STACK" in stacks
    assert "stacks.get_stackid(ctx, 0)" not in stacks
    assert "stacks.get_stackid(ctx, 0)" in text_of(funcslower, "-K", "c:open")


def test_a_wildcard_or_a_tracepoint_is_refused_in_one_line() -> None:
    line = refusal_line("tool", "funcslower", "c:mall*")
    assert line.startswith("funcslower: 'c:mall*': funcslower takes [LIBRARY:]FUNCTION"), line
    assert "[LIBRARY:]FUNCTION" in refusal_line("tool", "funcslower", "t:sched:sched_switch")


@pytest.mark.without_kprobes
def test_kernel_functions_stop_with_one_line() -> None:
    line = refusal_line("tool", "funcslower", "vfs_write")
    assert line.startswith("funcslower: kernel functions need kprobes") and "LIBRARY:FUNCTION" in line


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("funcslower"))


def _run(program: Path, plan: tuple[str, ...], *argv: str) -> tuple[str, int]:
    with timed(program, *plan) as t:
        out, _ = run_interrupted(
            ["tool", "funcslower", "-p", str(t.pid), *argv],
            lambda h: h.startswith("Tracing function calls slower than") or bool(re.match(r"\S+ \d+$", h)),
            t.go,
            seen=lambda out: "rbcc_nap" in out,
        )
    return out, t.pid


@pytest.mark.needs_root
def test_the_slow_call_shows_and_the_fast_one_does_not(program: Path) -> None:
    # the threshold is ten times the short nap: a loaded machine may stretch 3 ms to 10, not to 30
    out, pid = _run(
        program, ("q", "n80", "q", "n3"), "-m", "30", "-a", "2", "-t", f"{program}:rbcc_nap", f"{program}:rbcc_quick"
    )
    lines = out.splitlines()
    assert lines[0] == "Tracing function calls slower than 30 ms... Ctrl+C to quit."
    assert lines[1].split() == ["TIME", "COMM", "PID", "LAT(ms)", "RVAL", "FUNC", "ARGS"]
    rows = [line.split() for line in lines[2:]]
    # the 80 ms nap, returning 80 (0x50) with 80 as its first argument; neither the 3 ms nap nor the quick calls
    assert len(rows) == 1, out
    (ts, comm, shown_pid, lat, rval, fn, arg1, _arg2) = rows[0]
    assert (comm, int(shown_pid), rval, fn, arg1) == ("timed", pid, "50", f"{program}:rbcc_nap", "0x50"), out
    assert 80 <= float(lat) < 1000 and float(ts) == 0.0, out


@pytest.mark.needs_root
def test_microsecond_threshold_shows_both_naps(program: Path) -> None:
    out, _ = _run(program, ("n3", "n40", "q"), "-u", "1000", f"{program}:rbcc_nap", f"{program}:rbcc_quick")
    assert out.splitlines()[1].split() == ["COMM", "PID", "LAT(us)", "RVAL", "FUNC"]
    # (a quick call the scheduler preempts for a millisecond may show as well: it is not what this tests)
    naps = [r for r in (line.split() for line in out.splitlines()[2:]) if r[4] == f"{program}:rbcc_nap"]
    assert [(r[3], float(r[2]) >= 1000) for r in naps] == [("3", True), ("28", True)], out


@pytest.mark.needs_root
def test_folded_user_stack(program: Path) -> None:
    # -f prints no header, so the program naps over and over from the start and the first line out is
    # a folded stack: outermost frame first, ending in the function itself, then its count
    with timed(program, *["n20"] * 300) as t:
        assert t.proc.stdin is not None
        t.proc.stdin.write("go\n")
        t.proc.stdin.flush()
        out, _ = run_interrupted(
            ["tool", "funcslower", "-p", str(t.pid), "-f", "-U", f"{program}:rbcc_nap"],
            lambda h: h.startswith("timed;") and h.endswith(";rbcc_nap 1\n"),
            lambda: None,
        )
    assert all(line.startswith("timed;") and line.endswith(";rbcc_nap 1") for line in out.splitlines()), out


@pytest.mark.needs_kprobes
def test_a_slow_kernel_function_call_shows_and_fast_ones_do_not(program: Path) -> None:
    with timed(program, "n1", "n40", "q", "n1") as t:
        out, _ = run_interrupted(
            ["tool", "funcslower", "-m", "30", "-p", str(t.pid), "do_nanosleep"],
            lambda h: h.startswith("Tracing function calls slower than 30 ms"),
            t.go,
            seen=lambda out: "do_nanosleep" in out,
        )
    # the 40 ms nap (at least 40 ms; a VM without KVM may make it longer), neither 1 ms one
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(r[0], r[1], r[4]) for r in rows] == [("timed", str(t.pid), "do_nanosleep")], out
    assert float(rows[0][2]) >= 40, out
