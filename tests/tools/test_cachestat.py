"""cachestat: bcc's hit/miss arithmetic, its kprobe programs loaded through the verifier, the one line
it ends with on a kernel without kprobes, and (where kprobes exist) the counts of page cache work the
test does itself on an ext4 file system of its own."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from _ext4fs import ext4_dir, read_each_page, write_fresh
from _toolcheck import assert_kprobes_load, refusal_line, spawn_rbcc, text_of

from rbcc._tools import pagecache
from rbcc.tools import cachestat


def test_hits_and_misses_as_bcc_derives_them() -> None:
    # 100 accesses, 10 of them buffer dirties: 90 lookups; 30 pages added, 5 dirtied: 25 misses
    assert cachestat.ratios(100, 30, 5, 10) == (65, 25, 65 / 90)
    # readahead adds more pages than were looked up: every lookup a miss
    assert cachestat.ratios(10, 50, 0, 0) == (0, 10, 0.0)
    assert cachestat.ratios(0, 0, 0, 0) == (0, 0, 0.0)


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(cachestat), pagecache.PROBES.values())


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "cachestat", "1", "1")
    assert line.startswith("cachestat: needs kprobes on folio_mark_accessed") and "CONFIG_KPROBES" in line


HEADER = ["HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB"]


def wait_for_a_line_after(moment: float, lines: list[tuple[float, str]], what: str) -> None:
    """Wait (10 s at most) until the tool prints a line after ``moment``: its counts include what came
    before."""
    deadline = moment + 10
    while not any(at > moment for at, _ in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(at > moment for at, _ in lines), (f"no interval after {what}", lines)


@pytest.mark.needs_kprobes
def test_counts_a_file_written_then_read_from_disk_and_from_the_cache() -> None:
    pages = 1024
    with ext4_dir() as root:
        # every second until interrupted: however slow the guest (two VMs share make test-kernels'
        # CPUs), the lines printed after the reads end count all of them
        tool = spawn_rbcc("tool", "cachestat", "1")
        try:
            assert tool.stdout is not None and tool.stderr is not None
            header = tool.stdout.readline()
            assert header.split() == HEADER, header + tool.stderr.read()
            lines: list[tuple[float, str]] = []
            reader = threading.Thread(
                target=lambda: lines.extend((time.monotonic(), line) for line in tool.stdout), daemon=True
            )
            reader.start()
            # one interval: the pages written (each a buffer made dirty), then written back and dropped
            write_fresh(root / "data", pages)
            wait_for_a_line_after(time.monotonic(), lines, "the writing")
            # later ones: each page read from the disk (added to the cache: a miss), then again from
            # the cache (a hit)
            read_each_page(root / "data", pages)
            read_each_page(root / "data", pages)
            wait_for_a_line_after(time.monotonic(), lines, "the reading")
            time.sleep(0.2)  # into the next interval's sleep, where Ctrl-C ends the tool
            tool.send_signal(signal.SIGINT)
            assert tool.wait(timeout=30) == 0, tool.stderr.read()
        finally:
            if tool.poll() is None:
                tool.kill()
                tool.wait()
        reader.join(timeout=10)
    out = [line for _, line in lines]
    assert out[-1] == "Detaching...\n" and len(out) >= 4, out
    rows = [[float(v.rstrip("%")) for v in line.split()] for line in out[:-1]]
    hits, misses, dirties = (sum(row[i] for row in rows) for i in range(3))
    # Counted system-wide: other work only adds, but for a few metadata buffers (the journal's) made
    # dirty meanwhile, which bcc's arithmetic takes off the lookups
    assert dirties >= pages, out
    assert misses >= pages * 0.9 and hits >= pages * 0.9, out
    assert all(0 <= row[3] <= 100 for row in rows), out
