"""pidpersec: its one probe, and a live run that counts the children this test forks in a burst."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import pidpersec

LINE = re.compile(r"^\d\d:\d\d:\d\d: PIDs/sec: (\d+)$")


def test_counts_at_the_fork_tracepoint() -> None:
    text = text_of(pidpersec)
    assert "TRACEPOINT_PROBE(sched, sched_process_fork)" in text and "stats.atomic_increment(0)" in text


# Forks N children (each exits at once) when told to, and says when done: a small process forks
# faster than the test's own, whose memory every fork would copy the page tables of.
FORKER = r"""
import os, sys
n = int(sys.argv[1])
sys.stdin.readline()
children = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("done", flush=True)
"""


@pytest.mark.needs_root
def test_a_burst_of_forks_shows_in_one_seconds_line() -> None:
    n = 400
    forker = subprocess.Popen(
        [sys.executable, "-c", FORKER, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    tool = spawn_rbcc("tool", "pidpersec")
    lines: list[str] = []
    try:
        assert tool.stdout is not None and tool.stderr is not None
        header = tool.stdout.readline()
        assert header == "Tracing... Ctrl-C to end.\n", header + tool.stderr.read()
        reader = threading.Thread(target=lambda: lines.extend(tool.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        # right after a line is printed the tool sleeps a whole second: a burst started then falls in
        # the next line (if it is quick enough, which is measured)
        deadline = time.monotonic() + 15
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(lines)
        began = time.monotonic()
        forker.stdin.write("go\n")  # type: ignore[union-attr]
        forker.stdin.flush()  # type: ignore[union-attr]
        assert forker.stdout.readline() == "done\n"  # type: ignore[union-attr]
        took = time.monotonic() - began
        after = len(lines)
        # a line printed after the burst ended
        while len(lines) < after + 2 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
    finally:
        tool.send_signal(signal.SIGINT)
        assert tool.wait(timeout=30) == 0
        forker.kill()
        forker.wait()
    reader.join(timeout=10)
    counts = []
    for line in lines:
        m = LINE.match(line.rstrip("\n"))
        assert m, lines
        counts.append(int(m.group(1)))
    assert len(counts) >= 3, lines
    assert len(counts) >= after + 2, lines
    burst = counts[before]
    if took < 0.5:
        # other processes fork too (tens a second here): they only add
        assert burst >= n, (counts, before, took)
    else:  # a slow machine: the burst ran into the seconds after; every fork is in one of them
        assert sum(counts[before : after + 1]) >= n, (counts, before, after, took)
    assert "Traceback" not in tool.stderr.read()  # type: ignore[union-attr]
