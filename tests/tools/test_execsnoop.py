"""execsnoop: the C it builds for its options, and live runs that see the commands the test starts."""

from __future__ import annotations

import os
import subprocess

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import execsnoop


def _text(*argv: str) -> str:
    return text_of(execsnoop, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "e->uid != " not in plain and "e->ppid != " not in plain
    assert "i < 20;" in plain
    assert "e->uid != 1000" in _text("-u", "1000")
    assert "e->ppid != 181" in _text("-P", "181")
    assert "i < 3;" in _text("--max-args", "3")
    assert "cgroupset" in _text("--cgroupmap", "/sys/fs/bpf/x")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "execsnoop", "--ebpf", "-u", "0")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(syscalls, sys_enter_execve)" in out.stdout and "e->uid != 0" in out.stdout


def _rows(out: str, pid: int) -> list[list[str]]:
    return [f for f in (line.split(None, 4) for line in out.splitlines()) if len(f) >= 4 and f[1] == str(pid)]


@pytest.mark.needs_root
def test_sees_the_command_the_test_starts_with_its_arguments() -> None:
    children: list[int] = []

    def spawn() -> None:
        child = subprocess.Popen(["/bin/echo", f"rbcc-{os.getpid()}", "two words"], stdout=subprocess.DEVNULL)
        child.wait()
        children.append(child.pid)

    header = lambda h: h.split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]  # noqa: E731
    seen = lambda out: bool(children) and bool(_rows(out, children[0]))  # noqa: E731
    out, err = run_interrupted(["tool", "execsnoop"], header, spawn, seen)
    (row,) = _rows(out, children[0])
    # PCOMM PID PPID RET ARGS
    assert row == ["echo", str(children[0]), str(os.getpid()), "0", f"/bin/echo rbcc-{os.getpid()} two words"]


@pytest.mark.needs_root
def test_failed_execs_quoting_and_parent_filter() -> None:
    missing = f"/nonexistent/rbcc-{os.getpid()}"
    children: list[int] = []

    def spawn() -> None:
        for argv in ([missing], ["/bin/true", 'say "hi"']):
            pid = os.fork()
            if pid == 0:
                try:
                    os.execv(argv[0], argv)
                finally:
                    os._exit(127)
            os.waitpid(pid, 0)
            children.append(pid)

    header = lambda h: h.split()[:2] == ["PCOMM", "PID"]  # noqa: E731
    seen = lambda out: len(children) == 2 and all(_rows(out, pid) for pid in children)  # noqa: E731
    out, err = run_interrupted(["tool", "execsnoop", "-x", "-q", "-P", str(os.getpid())], header, spawn, seen)
    (failed,) = _rows(out, children[0])
    (ok,) = _rows(out, children[1])
    assert failed[2:4] == [str(os.getpid()), "-2"] and failed[4] == f'"{missing}"'  # ENOENT
    assert ok[2:] == [str(os.getpid()), "0", '"/bin/true" "say \\"hi\\""']
    # -P: only children of this process
    assert all(f[2] == str(os.getpid()) for f in (line.split() for line in out.splitlines()[1:]) if len(f) > 3)
