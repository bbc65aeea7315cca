"""syscount: the C it builds for its options, the syscall list, and live runs that count the syscalls
the test's own processes make (failed stats, sleeps, a child's calls), by syscall and by process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.syscall import syscalls
from rbcc.tools import syscount


def _text(*argv: str) -> str:
    return text_of(syscount, *argv)


def _rbcc(*argv: str) -> subprocess.CompletedProcess[str]:
    return run_rbcc("tool", "syscount", *argv)


def test_defines_for_the_options() -> None:
    assert not _text().startswith("#define")
    assert "#define FILTER_PID 181\n" in _text("-p", "181", "-t", "7")  # a PID trumps a TID
    assert "#define FILTER_TID 7\n" in _text("-t", "7", "-c", "1")
    assert "#define FILTER_PPID 1\n" in _text("-c", "1")
    text = _text("-x", "-e", "ENOENT", "-L", "-P", "--syscall", "read")
    for define in ("FILTER_FAILED", "FILTER_ERRNO 2", "LATENCY", "BY_PROCESS", "FILTER_SYSCALL_NR 0"):
        assert f"#define {define}\n" in text


def test_errno_by_name_or_number() -> None:
    assert syscount.errno_value("ENOENT") == 2 and syscount.errno_value("-13") == 13
    out = _rbcc("-e", "ENOTANERRNO")
    assert out.returncode == 2 and "couldn't map ENOTANERRNO to an errno" in out.stderr


def test_list_and_unknown_syscall() -> None:
    out = _rbcc("-l")
    assert out.returncode == 0
    names = out.stdout.split()
    assert names == sorted(n.decode() for n in syscalls.values()) and "openat" in names
    assert all(len(line.split()) <= 4 for line in out.stdout.splitlines())
    out = _rbcc("--syscall", "no_such_call")
    assert out.returncode == 1 and out.stderr == "syscount: syscall 'no_such_call' not found (-l lists them)\n"


def _table(out: str) -> dict[str, list[str]]:
    """The rows of the last summary, by their first column (syscall name or PID)."""
    summary = out.rsplit("\n[", 1)[-1].splitlines()[2:]
    return {f[0]: f[1:] for f in (line.split() for line in summary) if f and f[0] != "Detaching..."}


def _header(h: str) -> bool:
    return h.startswith("Tracing ") and h.rstrip().endswith("Ctrl+C to quit.")


@pytest.mark.needs_root
def test_counts_this_process_failed_stats_by_errno() -> None:
    missing = Path(f"/nonexistent/rbcc-{os.getpid()}")

    def workload() -> None:
        for _ in range(37):
            with pytest.raises(FileNotFoundError):
                os.stat(missing)
        with pytest.raises(FileExistsError):  # EEXIST: left out by -e ENOENT
            os.mkdir("/")

    out, _ = run_interrupted(["tool", "syscount", "-p", str(os.getpid()), "-e", "ENOENT"], _header, workload)
    rows = _table(out)
    stat = "newfstatat" if "newfstatat" in rows else "statx"
    assert rows[stat] == ["37"], out
    assert "mkdir" not in rows and "mkdirat" not in rows
    time.strptime(out.splitlines()[1], "[%H:%M:%S]")
    assert out.rstrip().endswith("Detaching...")


@pytest.mark.needs_root
def test_latency_in_milliseconds_of_a_childs_sleeps() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.read(); [time.sleep(0.2) for _ in range(3)]"],
        stdin=subprocess.PIPE,
    )
    try:
        out, _ = run_interrupted(
            ["tool", "syscount", "-L", "-m", "-p", str(child.pid), "--syscall", "clock_nanosleep"],
            lambda h: h.startswith("Tracing syscall 'clock_nanosleep'..."),
            lambda: child.communicate(b""),
        )
    finally:
        if child.poll() is None:
            child.kill()
    assert "SYSCALL                   COUNT        TIME (ms)" in out
    (count, ms) = _table(out)["clock_nanosleep"]
    assert count == "3" and 590 <= float(ms) < 3000 and len(ms.split(".")[1]) == 6


@pytest.mark.needs_root
def test_by_process_for_the_children_of_this_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.stdin.readline()"],
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None

        def workload() -> None:
            child.stdin.write("one\n")
            child.stdin.flush()
            time.sleep(0.3)

        out, _ = run_interrupted(["tool", "syscount", "-P", "-c", str(os.getpid())], _header, workload)
    finally:
        child.communicate("two\n")
    assert "PID    COMM               COUNT" in out
    rows = _table(out)
    # only children of this process: the child and the tool itself (run by this test), not this process
    assert str(child.pid) in rows and str(os.getpid()) not in rows and len(rows) <= 2, out
    assert rows[str(child.pid)][0] == os.path.basename(sys.executable)[:15] and int(rows[str(child.pid)][1]) >= 1


@pytest.mark.needs_root
def test_interval_and_duration_print_each_summary_then_end() -> None:
    start = time.monotonic()
    out = _rbcc("-i", "1", "-d", "2", "-T", "3")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Tracing syscalls, printing top 3... Ctrl+C to quit." and lines[-1] == "Detaching..."
    stamps = [line for line in lines if line.startswith("[")]
    assert len(stamps) == 2 and lines.count("SYSCALL                   COUNT") == 2
    assert 2 <= time.monotonic() - start < 40
