"""exitsnoop: the C it builds for its options, the status column, and live runs that see the exits,
codes and signals of processes and threads the test starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, spawn_rbcc, text_of

from rbcc.tools import exitsnoop


def _text(*argv: str) -> str:
    return text_of(exitsnoop, *argv)


def test_filters_for_the_options() -> None:
    plain = _text()
    assert "task->pid != task->tgid || 0" in plain  # main threads only, every exit
    assert "0 || 0" in _text("--per-thread")
    assert "!(task->tgid == 181 && task->pid == task->tgid)" in _text("-p", "181")
    assert "task->tgid != 181 ||" in _text("-p", "181", "--per-thread")
    assert "|| task->exit_code == 0" in _text("-x")


def test_status_column_as_bcc_prints_it() -> None:
    assert exitsnoop.status(0, 0) == "0"
    assert exitsnoop.status(3, 0) == "code 3"
    assert exitsnoop.status(0, signal.SIGKILL) == "signal 9 (KILL)"
    assert exitsnoop.status(0, signal.SIGSEGV | 0x80) == "signal 11 (SEGV), core dumped "
    assert exitsnoop.status(0, 100) == "signal 100 (unknown)"


def test_ebpf_prints_the_program() -> None:
    out = run_rbcc("tool", "exitsnoop", "--ebpf", "-x")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(sched, sched_process_exit)" in out.stdout and "task->exit_code == 0" in out.stdout


def _rows(out: str, pid: int) -> list[list[str]]:
    # PCOMM PID PPID TID AGE(s) EXIT_CODE...
    return [f for f in (line.split(None, 5) for line in out.splitlines()) if len(f) == 6 and f[1] == str(pid)]


HEADER = ["PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE"]


@pytest.mark.needs_root
def test_sees_exit_codes_signals_and_age() -> None:
    children: dict[str, int] = {}

    def workload() -> None:
        code = subprocess.Popen(["/bin/sh", "-c", "sleep 0.3; exit 3"])
        code.wait()
        children["code"] = code.pid
        killed = subprocess.Popen(["/bin/sleep", "30"])
        time.sleep(0.1)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        children["killed"] = killed.pid

    seen = lambda out: len(children) == 2 and all(_rows(out, p) for p in children.values())  # noqa: E731
    out, _ = run_interrupted(["tool", "exitsnoop"], lambda h: h.split() == HEADER, workload, seen)
    (code,) = _rows(out, children["code"])
    assert code[0] == "sh" and code[2] == str(os.getpid()) and code[3] == str(children["code"])
    assert float(code[4]) >= 0.29 and code[5] == "code 3"
    (killed,) = _rows(out, children["killed"])
    assert killed[0] == "sleep" and killed[5] == "signal 9 (KILL)"


@pytest.mark.needs_root
def test_failed_only_with_timestamp_and_label() -> None:
    children: list[int] = []

    def workload() -> None:
        for argv in (["/bin/true"], ["/bin/false"]):
            child = subprocess.Popen(argv)
            child.wait()
            children.append(child.pid)

    header = lambda h: h.split() == ["TIME-UTC", "LABEL", *HEADER]  # noqa: E731
    seen = lambda out: len(children) == 2 and f" {children[1]} " in out  # noqa: E731
    out, _ = run_interrupted(["tool", "exitsnoop", "--utc", "-x", "--label=done"], header, workload, seen)
    assert f" {children[0]} " not in out  # exit(0) is left out under -x
    (row,) = [line.split() for line in out.splitlines() if f" {children[1]} " in line]
    assert row[1:3] == ["done", "false"] and row[3] == str(children[1]) and row[-2:] == ["code", "1"]
    time.strptime(row[0].split(".")[0], "%H:%M:%S")


@pytest.mark.needs_root
def test_per_thread_shows_the_threads_of_one_process() -> None:
    script = "import threading; t = [threading.Thread(target=lambda: None) for _ in range(3)]; "
    script += "[x.start() for x in t]; [x.join() for x in t]; import time; time.sleep(0.2)"
    children: list[int] = []

    def workload() -> None:
        child = subprocess.Popen([sys.executable, "-c", script])
        child.wait()
        children.append(child.pid)

    seen = lambda out: bool(children) and any(f[3] == f[1] for f in _rows(out, children[0]))  # noqa: E731
    out, _ = run_interrupted(["tool", "exitsnoop", "--per-thread"], lambda h: h.split() == HEADER, workload, seen)
    rows = _rows(out, children[0])
    threads = [f for f in rows if f[3] != str(children[0])]
    assert len(threads) == 3 and len({f[3] for f in threads}) == 3
    assert [f[3] for f in rows if f[3] == str(children[0])] == [str(children[0])]


@pytest.mark.needs_root
def test_pid_filter_ends_with_that_process() -> None:
    target = subprocess.Popen(["/bin/sh", "-c", "read line; exit 7"], stdin=subprocess.PIPE)
    tool = spawn_rbcc(
        "tool",
        "exitsnoop",
        "-p",
        str(target.pid),
    )
    try:
        assert tool.stdout is not None
        assert tool.stdout.readline().split() == HEADER
        time.sleep(0.5)
        other = subprocess.run(["/bin/false"])
        assert other.returncode == 1
        target.communicate(b"go\n")
        out, err = tool.communicate(timeout=15)
    finally:
        if tool.poll() is None:
            tool.kill()
    assert tool.returncode == 0, err
    rows = [line.split(None, 5) for line in out.splitlines()]
    assert rows == [["sh", str(target.pid), str(os.getpid()), str(target.pid), rows[0][4], "code 7"]]
