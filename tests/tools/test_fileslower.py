"""fileslower: its filters and threshold in the C, and live runs: a FIFO read the test makes block for
a known time is shown (with -a) with its thread id, size, latency and name; without -a only the test's
regular file reads are shown, and at threshold 0 each of them."""

from __future__ import annotations

import os
import re
import tempfile
import threading

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import fileslower

BLOCK = 0.2


def test_filters_and_threshold_in_the_program() -> None:
    plain = text_of(fileslower)
    assert "if (0)" in plain and "delta_us < 10000" in plain and "!S_ISREG(mode)" in plain
    assert "d_name.len == 0 || 0)" in text_of(fileslower, "-a") and "delta_us < 1000)" in text_of(fileslower, "1")
    assert "if (tgid != 185)" in text_of(fileslower, "-p", "185")
    for call in ("read", "write", "pread64", "pwrite64", "readv", "writev"):
        assert f"TRACEPOINT_PROBE(syscalls, sys_exit_{call})" in plain


def _rows(out: str, name: str) -> list[list[str]]:
    rows = []
    for line in out.splitlines():
        r = line.split()
        if len(r) == 7 and r[6] == name and re.match(r"\d+\.\d{3}$", r[0]):
            assert r[1] == own_comm().decode()[:14], line
            rows.append(r[2:6])
    return rows


def _header(h: str) -> bool:
    return h.startswith("Tracing sync read/writes slower than")


@pytest.mark.needs_root
def test_a_fifo_read_blocked_on_purpose_is_shown_with_all_files() -> None:
    name = f"rbcc-slow-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        fifo = os.path.join(tmp, name)
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDWR)  # opened both ways: the read, not the open, waits for the writer

        def work() -> None:
            writer = threading.Timer(BLOCK, lambda: os.write(fd, b"x" * 10))
            writer.start()
            assert os.read(fd, 4096) == b"x" * 10
            writer.join()

        try:
            out, _ = run_interrupted(
                ["tool", "fileslower", "-a", "-p", str(os.getpid()), "50"],
                _header,
                work,
                lambda out: bool(_rows(out, name)),
            )
        finally:
            os.close(fd)
    # the read (by this thread), not the writer's quick write
    ((tid, d, size, lat),) = _rows(out, name)
    assert (tid, d, size) == (str(threading.get_native_id()), "R", "4096"), out
    assert BLOCK * 1000 - 5 <= float(lat) < BLOCK * 1000 + 3000, out


@pytest.mark.needs_root
def test_regular_files_only_without_all_files() -> None:
    name, fifo_name = f"rbcc-fast-{os.getpid()}", f"rbcc-fifo-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        path, fifo = os.path.join(tmp, name), os.path.join(tmp, fifo_name)
        with open(path, "wb") as f:
            f.write(b"y" * 8192)
        os.mkfifo(fifo)

        def work() -> None:
            fd = os.open(path, os.O_RDONLY)
            assert len(os.pread(fd, 100, 0)) == 100
            assert os.readv(fd, [bytearray(300), bytearray(200)]) == 500
            os.close(fd)
            ffd = os.open(fifo, os.O_RDWR)
            os.write(ffd, b"z")
            assert os.read(ffd, 10) == b"z"
            os.close(ffd)

        out, _ = run_interrupted(
            ["tool", "fileslower", "-p", str(os.getpid()), "0"],
            _header,
            work,
            lambda out: len(_rows(out, name)) >= 2,
        )
    tid = str(threading.get_native_id())
    assert [r[:3] for r in _rows(out, name)] == [[tid, "R", "100"], [tid, "R", "500"]], out
    assert _rows(out, fifo_name) == [], out
