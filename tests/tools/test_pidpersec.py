"""pidpersec: its one probe, and a live run that counts the children this test forks in a burst."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import pidpersec

LINE = re.compile(r"^\d\d:\d\d:\d\d: PIDs/sec: (\d+)$")


def test_counts_at_the_fork_tracepoint() -> None:
    text = text_of(pidpersec)
    assert "TRACEPOINT_PROBE(sched, sched_process_fork)" in text and "stats.atomic_increment(0)" in text


def _fork_burst(n: int) -> None:
    children = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)


@pytest.mark.needs_root
def test_a_burst_of_forks_shows_in_one_seconds_line() -> None:
    n = 200
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
        _fork_burst(n)
        took = time.monotonic() - began
        while len(lines) < before + 2 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
    finally:
        tool.send_signal(signal.SIGINT)
        assert tool.wait(timeout=30) == 0
    reader.join(timeout=10)
    counts = []
    for line in lines:
        m = LINE.match(line.rstrip("\n"))
        assert m, lines
        counts.append(int(m.group(1)))
    assert len(counts) >= 3, lines
    assert len(counts) >= before + 2, lines
    burst, previous = counts[before], counts[before - 1]
    if took < 0.5:
        # other processes fork too, but not n more in one second than in the one before
        assert burst >= n and burst >= previous + n // 2, (counts, before)
    else:  # a slow machine: the burst may have run into the second after
        assert burst + counts[before + 1] >= n, (counts, before, took)
    assert "Traceback" not in tool.stderr.read()  # type: ignore[union-attr]
