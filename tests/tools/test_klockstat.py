"""klockstat: the C for its options, the caller found past the locking code's frames; live, a child's
threads that write and read one pipe at once wait on the pipe's mutex, and the waits show under the
pipe's read and write functions, counted, with consistent averages."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import klockstat


def test_filters_shape_the_c() -> None:
    plain = text_of(klockstat)
    assert "if (0 || !(args->flags & 32))" in plain and "BPF_STACK_TRACE(stack_traces, 16384)" in plain
    assert "if (pid != 7 || !(args->flags & 32))" in text_of(klockstat, "-p", "7")
    # a TID trumps a PID, as in bcc
    assert "if (tid != 9 || 0)" in text_of(klockstat, "-p", "7", "-t", "9", "-A", "--stack-storage-size", "5")
    assert "BPF_STACK_TRACE(stack_traces, 5)" in text_of(klockstat, "--stack-storage-size", "5")


def test_the_caller_is_past_the_locking_code() -> None:
    stack = [
        "__mutex_lock.constprop.0+0x1f2",
        "__mutex_lock_slowpath+0x13",
        "mutex_lock+0x3c",
        "anon_pipe_write+0x53",
        "vfs_write+0x400",
    ]
    assert klockstat.caller_frames(stack) == stack[3:]
    assert klockstat.caller_frames(["queued_spin_lock_slowpath+0x5", "_raw_spin_lock+0x2", "try_to_wake_up+0x9"]) == [
        "try_to_wake_up+0x9"
    ]
    assert klockstat.caller_frames(["rwsem_down_write_slowpath+0x1", "down_write+0x2", "vm_mmap_pgoff+0x3"]) == [
        "vm_mmap_pgoff+0x3"
    ]
    assert klockstat.caller_frames(["mutex_lock+0x3c"]) == ["mutex_lock+0x3c"]  # never nothing


def test_sort_fields_are_bccs() -> None:
    assert [klockstat.sort_field(s) for s in (None, "acq_count", "hld_total,acq_max", "acq_total")] == [
        "max",
        "count",
        "total",
        "total",
    ]
    with pytest.raises(ValueError):
        klockstat.sort_field("max")


# Two writers and two readers of one pipe for 3 s: each read and write takes the pipe's mutex.
PIPE_THREADS = """
import os, sys, threading, time
print("ready", flush=True)
sys.stdin.readline()
r, w = os.pipe()
# non-blocking: no thread waits on the pipe past the end (a blocked reader would never return)
os.set_blocking(r, False)
os.set_blocking(w, False)
stop = time.monotonic() + 3
def writer():
    while time.monotonic() < stop:
        try:
            os.write(w, b"x" * 64)
        except BlockingIOError:
            pass
def reader():
    while time.monotonic() < stop:
        try:
            os.read(r, 4096)
        except BlockingIOError:
            pass
threads = [threading.Thread(target=f) for f in (writer, writer, reader, reader)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""

ROW = re.compile(r"^ *(\S+) +(\d+) +(\d+) +(\d+) +(\d+)$")


@pytest.mark.needs_root
def test_waits_on_a_pipes_mutex_show_under_the_pipes_functions() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", PIPE_THREADS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        tool = spawn_rbcc("tool", "klockstat", "-p", str(child.pid), "-d", "6", "-s", "2")
        assert tool.stdout is not None and tool.stderr is not None
        line = tool.stdout.readline()
        assert line.startswith("Tracing lock events"), line + tool.stderr.read()
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
        out, err = tool.communicate(timeout=60)
    finally:
        child.kill()
        child.wait()
    assert tool.returncode == 0 and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[1].split() == ["Caller", "Avg", "Spin", "Count", "Max", "spin", "Total", "spin"], out
    rows = [m.groups() for m in map(ROW.match, lines[2:]) if m]
    pipe = [r for r in rows if re.match(r"(anon_)?pipe_(read|write)\+", r[0])]
    assert pipe, out
    for _, avg, count, most, total in rows:
        assert int(count) > 0 and int(avg) == int(total) // int(count) and int(avg) <= int(most) <= int(total)
    # -s 2: each caller's own caller below it (vfs_read / vfs_write for the pipe's)
    for i, text in enumerate(lines):
        if re.match(r" *(anon_)?pipe_(read|write)\+", text) and ROW.match(text):
            assert lines[i + 1].strip().startswith("vfs_"), out
