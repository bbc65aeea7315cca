"""ucalls: the method calls of a Python child counted exactly (its own function, called N times),
with -S its syscalls (getppid, made M times), with -L their times too."""

from __future__ import annotations

from pathlib import Path

import pytest
from _langkids import python_child, run_on_child
from _toolcheck import text_of

from rbcc.tools import ucalls

CALLS, GETPPIDS = 23, 11
BODY = f"""import os
def rbcc_unique_fn():
    pass
for _ in range({CALLS}):
    rbcc_unique_fn()
for _ in range({GETPPIDS}):
    os.getppid()
"""


def test_generated_c_follows_the_options() -> None:
    counts = text_of(ucalls, "-l", "python", "42")
    assert "counts.increment(data.method)" in counts and "bpf_usdt_readarg(2, ctx, &method)" in counts
    assert "raw_syscalls" not in counts and "trace_return" not in counts
    latency = text_of(ucalls, "-l", "python", "-L", "-S", "42")
    assert "#define LATENCY" in latency and "int trace_return" in latency
    assert "TRACEPOINT_PROBE(raw_syscalls, sys_exit)" in latency and "(pid >> 32) != 42" in latency
    syscalls_only = text_of(ucalls, "-l", "none", "-S", "7")
    assert "trace_entry" not in syscalls_only and "syscounts.increment(id)" in syscalls_only
    # Java's class is argument 2 and its method argument 4; Tcl names no class
    java = text_of(ucalls, "-l", "java", "1")
    assert "bpf_usdt_readarg(2, ctx, &clazz)" in java and "bpf_usdt_readarg(4, ctx, &method)" in java
    tcl = text_of(ucalls, "-l", "tcl", "1")
    assert "&clazz)" not in tcl and "bpf_usdt_readarg(1, ctx, &method)" in tcl
    for lang, arg in [("perl", "bpf_usdt_readarg(2, ctx, &clazz)"), ("php", "bpf_usdt_readarg(4, ctx, &clazz)")]:
        assert arg in text_of(ucalls, "-l", lang, "1")
    assert "bpf_usdt_readarg(2, ctx, &method)" in text_of(ucalls, "-l", "ruby", "1")


def _row(out: str, name: str) -> list[str]:
    found = [line.split() for line in out.splitlines() if line.split() and line.split()[0].endswith(name)]
    assert len(found) == 1, out
    return found[0]


@pytest.mark.needs_root
def test_counts_a_childs_own_calls_and_syscalls_exactly(tmp_path: Path) -> None:
    child = python_child(tmp_path, BODY)
    header = lambda h: h.startswith("Attached kernel tracepoints")  # noqa: E731
    out = run_on_child(["tool", "ucalls", "-l", "python", "-S", str(child.pid)], child, header)
    assert f"Tracing calls in process {child.pid} (language: python)" in out
    assert _row(out, ".rbcc_unique_fn") == [f"{tmp_path / 'child.py'}.rbcc_unique_fn", str(CALLS)]
    assert _row(out, "getppid") == ["getppid", str(GETPPIDS)]


@pytest.mark.needs_root
def test_latency_mode_counts_and_times_the_calls(tmp_path: Path) -> None:
    child = python_child(tmp_path, BODY.replace("    pass", "    sum(range(2000))"))
    header = lambda h: h.startswith("Tracing calls in process")  # noqa: E731
    out = run_on_child(["tool", "ucalls", "-l", "python", "-L", "-m", str(child.pid)], child, header)
    assert "METHOD                                              # CALLS TIME (ms)" in out
    name, calls, ms = _row(out, ".rbcc_unique_fn")
    assert calls == str(CALLS) and float(ms) > 0
