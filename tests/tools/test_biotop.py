"""biotop: the PID filter in its C, and live runs whose table shows the test's O_DIRECT I/O under the
test's PID and comm, with its direction, count and kilobytes."""

from __future__ import annotations

import os
import re

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import own_comm, run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import biotop

COUNT = 8


def _text(*argv: str) -> str:
    return text_of(biotop, *argv)


def test_pid_filter_is_compiled_in_only_when_asked() -> None:
    assert "if (0)" in _text() and "pid != " not in _text()
    assert _text("-p", "181").count("if (pid != 181)") == 2


def _own(out: str, direction: str) -> tuple[int, float]:
    """(I/Os, Kbytes) of the test's own rows in that direction, over every interval."""
    ios, kbytes = 0, 0.0
    comm = own_comm().decode()
    for r in (line.split() for line in out.splitlines()):
        if len(r) == 9 and r[0] == str(os.getpid()) and r[1] == comm and r[2] == direction:
            assert r[5] == root_disk()
            ios += int(r[6])
            kbytes += float(r[7])
    return ios, kbytes


def _header(h: str) -> bool:
    return h.startswith("Tracing... Output every 1 secs")


@pytest.mark.needs_root
def test_shows_the_tests_writes_and_reads_for_its_pid() -> None:
    def work() -> None:
        f.write(COUNT, 32768)
        f.read(COUNT, 8192)

    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "biotop", "-C", "-p", str(os.getpid())],
            _header,
            work,
            lambda out: _own(out, "R")[0] >= COUNT,
        )
    assert _own(out, "W") == (COUNT, COUNT * 32.0), out
    assert _own(out, "R") == (COUNT, COUNT * 8.0), out
    # -p: nobody else
    rows = [r for r in (line.split() for line in out.splitlines()) if len(r) == 9 and r[0].isdigit()]
    assert {r[0] for r in rows} == {str(os.getpid())}
    assert out.rstrip().endswith("Detaching...")


@pytest.mark.needs_root
def test_count_ends_it_and_maxrows_caps_rows() -> None:
    done = run_rbcc("tool", "biotop", "-C", "-r", "1", "1", "2", timeout=30)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert len(re.findall(r"^\d\d:\d\d:\d\d loadavg: ", out, re.M)) == 2, out
    for table in out.split("PID     COMM")[1:]:
        assert len([line for line in table.splitlines()[1:] if re.match(r"^\d+ ", line)]) <= 1
