"""filetop: its filters in the C, and a live run whose table shows the test's own reads and writes of
a file it names, with counts and kilobytes."""

from __future__ import annotations

import os
import tempfile

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import filetop


def _text(*argv: str) -> str:
    return text_of(filetop, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    assert "if (0)" in _text() and "TYPE_FILTER" not in _text() and "!S_ISREG(mode)" in _text()
    assert "d_name.len == 0 || 0)" in _text("-a")
    assert "if (tgid != 181)" in _text("-p", "181")
    for call in ("read", "pread64", "write", "pwrite64"):
        assert f"TRACEPOINT_PROBE(syscalls, sys_enter_{call})" in _text()


def _mine(out: str, name: str) -> list[int]:
    """[reads, writes, R_Kb, W_Kb] of the test's rows for file ``name``, over every interval."""
    total = [0, 0, 0, 0]
    for r in (line.split() for line in out.splitlines()):
        if len(r) == 8 and r[0] == str(os.getpid()) and r[1] == own_comm().decode() and r[7] == name:
            assert r[6] == "R"
            total = [t + int(v) for t, v in zip(total, r[2:6])]
    return total


@pytest.mark.needs_root
def test_shows_the_tests_reads_and_writes_of_its_file() -> None:
    name = f"rbcc-filetop-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)

        def work() -> None:
            fd = os.open(path, os.O_CREAT | os.O_RDWR)
            for _ in range(5):
                os.write(fd, b"w" * 4096)
            for _ in range(3):
                os.pread(fd, 8192, 0)
            os.close(fd)

        out, _ = run_interrupted(
            ["tool", "filetop", "-C", "-p", str(os.getpid())],
            lambda h: h.startswith("Tracing... Output every 1 secs"),
            work,
            lambda out: _mine(out, name)[0] >= 3,
        )
    assert _mine(out, name) == [3, 5, 24, 20], out
    assert out.rstrip().endswith("Detaching...")
