"""cachetop: bcc's per-process arithmetic, the PID filter in its C, its kprobe programs loaded through the
verifier, the one line it ends with on a kernel without kprobes, and (where kprobes exist) the row of
a process of the test's own that writes a file, then reads it from the disk and from the cache."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from _ext4fs import PAGE, ext4_dir
from _toolcheck import assert_kprobes_load, refusal_line, spawn_rbcc, text_of

from rbcc._tools import pagecache
from rbcc.tools import cachetop


def test_rows_are_bcc_arithmetic_per_process() -> None:
    # 90 page accesses and 10 buffer dirties: 100 hits; 30 pages added and 20 dirtied: 50 misses
    row = cachetop.row_of(7, 0, "cat", [90, 30, 20, 10])
    assert row[3:6] == (100, 50, 10)
    assert row.read_hit == pytest.approx(60.0) and row.write_hit == pytest.approx(20.0)
    assert cachetop.row_of(7, 0, "idle", [0, 0, 0, 0])[6:] == (0.0, 0.0)
    # the map's counts are per (process, function): they add up per process, and sort by the column asked
    items = [((1, 0, 0, "a"), 5), ((1, 0, 1, "a"), 1), ((2, 0, 0, "b"), 9)]
    assert [r.pid for r in cachetop.rows(items, "HITS", ascending=False)] == [2, 1]
    assert [r.pid for r in cachetop.rows(items, "MISSES", ascending=False)] == [1, 2]
    assert [r.pid for r in cachetop.rows(items, "HITS", ascending=True)] == [1, 2]


def test_pid_filter_is_in_the_c() -> None:
    assert "if (0)" in text_of(cachetop)
    assert "pid != 181" in text_of(cachetop, "-p", "181")


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(cachetop, "-p", "1"), pagecache.PROBES.values())


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "cachetop", "1", "1")
    assert line.startswith("cachetop: needs kprobes on folio_mark_accessed") and "CONFIG_KPROBES" in line


# A child that writes its file (pages made dirty), drops it from the cache, then reads it twice: once
# from the disk (pages added: misses), once from the cache (accesses: hits).
WORKLOAD = textwrap.dedent(
    """
    import os, sys, time
    path, pages, page = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.stdin.readline()
    with open(path, "wb") as f:
        f.write(b"z" * pages * page)
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    for _ in range(2):
        fd = os.open(path, os.O_RDONLY)
        for i in range(pages):
            os.pread(fd, page, i * page)
        os.close(fd)
    print("done", flush=True)
    time.sleep(30)
    """
)


def _wait_for_screens(lines: list[str], count: int, timeout: float) -> None:
    """Wait until the tool has printed ``count`` screens (their first line) in all."""
    deadline = time.monotonic() + timeout
    while sum("Buffers MB:" in line for line in lines) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sum("Buffers MB:" in line for line in lines) >= count, lines


@pytest.mark.needs_kprobes
def test_a_process_row_shows_its_hits_misses_and_dirties() -> None:
    pages = 512
    with ext4_dir() as root:
        child = subprocess.Popen(
            [sys.executable, "-c", WORKLOAD, str(root / "data"), str(pages), str(PAGE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        tool = spawn_rbcc("tool", "cachetop", "-C", "-p", str(child.pid), "1")
        lines: list[str] = []
        try:
            assert tool.stdout is not None and tool.stderr is not None
            assert child.stdin is not None and child.stdout is not None
            reader = threading.Thread(target=lambda: lines.extend(tool.stdout), daemon=True)  # type: ignore[arg-type]
            reader.start()
            # a first screen: the probes are attached (the first compile in a fresh VM takes a while)
            _wait_for_screens(lines, 1, 600)
            assert "Sort: HITS" in next(line for line in lines if "Buffers MB:" in line), lines
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
            # the counts of the work done are in the screens printed after it: two more
            _wait_for_screens(lines, sum("Buffers MB:" in line for line in lines) + 2, 120)
            tool.send_signal(signal.SIGINT)
            assert tool.wait(timeout=120) == 0, tool.stderr.read()
            reader.join(timeout=30)
        finally:
            for p in (tool, child):
                if p.poll() is None:
                    p.kill()
                    p.wait()
    rows = [line.split() for line in lines if line.split()[:1] == [str(child.pid)]]
    assert rows, lines
    hits, misses = (sum(int(r[i]) for r in rows) for i in (3, 4))
    # the two reads access every page (and readahead adds every page once)
    assert hits >= pages and misses >= pages, lines
    assert all(r[2].startswith("python") for r in rows), rows
    assert all(0.0 <= float(r[6].rstrip("%")) <= 100.0 for r in rows), rows
    assert lines[-1] == "Detaching...\n", lines[-3:]
