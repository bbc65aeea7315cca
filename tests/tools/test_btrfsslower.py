"""btrfsslower live (bcc's name for `fsslower -t btrfs`; its C, options and refusal without kprobes are
tested in test_fsslower.py): where kprobes exist, with threshold 0 it shows each of the test's own
calls on a btrfs image of its own, with its comm, pid and file name."""

from __future__ import annotations

import os

import pytest
from _bpfutil import own_comm, run_interrupted
from _ext4fs import PAGE, file_work
from _fsimage import fs_dir


@pytest.mark.needs_kprobes
def test_shows_each_btrfs_call_of_this_process() -> None:
    name = "rbcc-btrfsslow.dat"
    with fs_dir("btrfs") as root:
        out, _ = run_interrupted(
            ["tool", "btrfsslower", "-p", str(os.getpid()), "0"],
            lambda h: h == "Tracing btrfs operations\n",
            lambda: file_work(root / name, 3, 2),
            lambda out: out.count(name) >= 8,
        )
    lines = out.splitlines()
    assert lines[1].split() == ["TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME"], out
    rows = [line.split() for line in lines[2:]]
    comm = own_comm().decode()[:14]
    assert all(row[1:3] == [comm, str(os.getpid())] and float(row[6]) >= 0 for row in rows), out
    # (T, BYTES, OFF_KB, FILENAME): two opens, three page writes, an fsync, two page reads
    calls = sorted((row[3], int(row[4]), int(row[5]), row[7]) for row in rows)
    kb = PAGE // 1024
    writes = [("W", PAGE, i * kb, name) for i in range(3)]
    reads = [("R", PAGE, i * kb, name) for i in range(2)]
    assert calls == sorted([("O", 0, 0, name)] * 2 + writes + [("S", 0, 0, name)] + reads), out
