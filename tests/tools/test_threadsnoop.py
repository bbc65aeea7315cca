"""threadsnoop: a live run that sees the threads this test starts, named by their start function."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _bpfutil import run_interrupted

from rbcc.tools import threadsnoop


def test_probe_reads_the_start_routine() -> None:
    text = threadsnoop.bpf_text(threadsnoop.build_parser().parse_args([]))
    assert "PT_REGS_PARM3(ctx)" in text and "int do_entry(struct pt_regs *ctx)" in text


def _rows(out: str, pid: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) == 4 and f[1] == str(pid)]


@pytest.mark.needs_root
def test_sees_the_threads_a_child_starts() -> None:
    # a child of its own, so its threads are the only ones with its PID; it stays alive (reading its
    # stdin) until the tool has named the start functions from its memory map
    script = "import sys, threading\n"
    script += "for _ in range(3):\n    t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
    script += "sys.stdin.read()\n"
    children: list[subprocess.Popen[bytes]] = []

    def start_threads() -> None:
        children.append(subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE))

    header = lambda h: h.split() == ["TIME(ms)", "PID", "COMM", "FUNC"]  # noqa: E731
    seen = lambda out: bool(children) and len(_rows(out, children[0].pid)) >= 3  # noqa: E731
    try:
        out, _ = run_interrupted(["tool", "threadsnoop"], header, start_threads, seen)
    finally:
        for child in children:
            child.communicate(b"")
    rows = _rows(out, children[0].pid)
    # CPython starts every thread through pythread_wrapper, found in the interpreter's own binary
    comm = os.path.basename(sys.executable)[:15]
    assert [r[2:] for r in rows] == [[comm, "pythread_wrapper"]] * 3, out
    times = [int(r[0]) for r in rows]
    assert times == sorted(times) and times[0] >= 0
