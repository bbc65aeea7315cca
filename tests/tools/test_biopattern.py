"""biopattern: the disk filter in its C, and a live run that counts the test's sequential O_DIRECT
writes on the root disk."""

from __future__ import annotations

import os
import time

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import run_interrupted
from _toolcheck import spawn_rbcc, text_of

from rbcc._tools import block
from rbcc.tools import biopattern

COUNT = 16


def _text(*argv: str) -> str:
    return text_of(biopattern, *argv)


def test_disk_filter_uses_the_tracepoints_dev_t() -> None:
    assert "dev !=" not in _text()
    rdev = os.stat(f"/dev/{root_disk()}").st_rdev
    assert f"if (dev != {block.mkdev(os.major(rdev), os.minor(rdev))})" in _text("-d", root_disk())


def _rows(out: str) -> list[list[str]]:
    return [r for r in (line.split() for line in out.splitlines()[1:]) if len(r) == 6]


@pytest.mark.needs_root
def test_counts_the_tests_sequential_writes() -> None:
    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "biopattern", "-d", root_disk()],
            lambda h: h.split() == ["TIME", "DISK", "%RND", "%SEQ", "COUNT", "KBYTES"],
            lambda: f.write(COUNT, 16384),
        )
    (row,) = _rows(out)
    assert row[1] == root_disk()
    assert int(row[2]) + int(row[3]) == 100
    assert int(row[4]) >= COUNT - 1  # the disk's first request only marks where the next would start
    assert int(row[5]) >= (COUNT - 1) * 16


@pytest.mark.needs_root
def test_interval_and_count_end_it() -> None:
    tool = spawn_rbcc(
        "tool",
        "biopattern",
        "-d",
        root_disk(),
        "1",
        "2",
    )
    with direct_file() as f:
        # I/O in every interval, until the tool stops by itself after its two
        while tool.poll() is None:
            f.write(4, 4096)
            time.sleep(0.05)
    out, err = tool.communicate(timeout=10)
    assert tool.returncode == 0 and "Traceback" not in err, err
    rows = _rows(out)
    assert len(rows) == 2 and all(r[1] == root_disk() for r in rows), out
