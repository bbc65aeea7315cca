"""readahead: its probes, and a live run in which this test reads ahead a file of its own
(posix_fadvise WILLNEED, which readahead:page_cache_ra_unbounded marks): 512 pages read 1.2 s later
land in the 1024 -> 2047 ms slot (all but the odd page the kernel reclaims and reads again), and
1024 pages never read stay counted as unused."""

from __future__ import annotations

import os
import re
import tempfile
import time

import pytest
from _bpfutil import fstype_of, run_interrupted
from _toolcheck import text_of

from rbcc.tools import readahead

PAGE = os.sysconf("SC_PAGE_SIZE")


def test_probes() -> None:
    text = text_of(readahead, "-d", "5")
    for tp in ("page_cache_ra_unbounded", "page_cache_ra_order"):
        assert f"TRACEPOINT_PROBE(readahead, {tp})" in text
    for tp in ("mm_filemap_add_to_page_cache", "mm_filemap_get_pages", "mm_filemap_map_pages", "mm_filemap_fault"):
        assert f"TRACEPOINT_PROBE(filemap, {tp})" in text
    assert "i < 256;" in text


def _cold_file(folder: str, pages: int) -> int:
    """An open file of ``pages`` pages, written to disk and dropped from the page cache."""
    fd, path = tempfile.mkstemp(dir=folder, prefix="rbcc-readahead-")
    os.unlink(path)
    chunk = os.urandom(256 * PAGE)
    for _ in range(pages // 256):
        os.write(fd, chunk)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    return fd


@pytest.mark.needs_root
def test_pages_read_ahead_then_used_or_not() -> None:
    folder = "/var/tmp"
    if fstype_of(folder) in ("tmpfs", "9p", "overlay"):
        pytest.skip(f"{folder} is on {fstype_of(folder)}: no block device to read ahead from")
    used, unused = 512, 1024
    fd = _cold_file(folder, used + unused)
    try:

        def workload() -> None:
            # 32 pages at a time: the kernel reads at most the device's readahead size per call
            for first in range(0, used + unused, 32):
                os.posix_fadvise(fd, first * PAGE, 32 * PAGE, os.POSIX_FADV_WILLNEED)
            time.sleep(1.2)
            for i in range(used):
                assert len(os.pread(fd, PAGE, i * PAGE)) == PAGE

        out, _ = run_interrupted(["tool", "readahead"], lambda h: h == "Tracing... Hit Ctrl-C to end.\n", workload)
    finally:
        os.close(fd)
    m = re.search(r"^Read-ahead unused pages: (-?\d+)$", out, re.M)
    assert m and "Histogram of read-ahead used page age (ms):" in out, out
    # counted system-wide: other readers only add pages (their own, used or not)
    assert int(m.group(1)) >= unused, out
    slots = {
        int(r[1]): int(r[3])
        for r in (re.match(r"^\s*(\d+) -> (\d+)\s+: (\d+)", line) for line in out.splitlines())
        if r
    }
    # Every page read was read ahead and so was used; a page the kernel reclaims between the read-ahead
    # and the read is read again at the read and used at once (its first copy stays counted unused), so
    # a few of the 512 may land in the first slot instead.
    assert sum(slots.values()) >= used, out
    assert slots.get(1024, 0) >= used - 16, out
