"""btrfsslower live (bcc's name for `fsslower -t btrfs`; its C, options and refusal without kprobes are
tested in test_fsslower.py): where kprobes exist, with threshold 0 it shows each of the test's own
calls on a btrfs image of its own, with its comm, pid and file name."""

from __future__ import annotations

import os

import pytest
from _bpfutil import run_interrupted
from _ext4fs import file_work
from _fsimage import assert_slower_rows, fs_dir


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
    assert_slower_rows(out, name)
