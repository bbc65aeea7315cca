"""nfsslower live (bcc's name for `fsslower -t nfs`; its C, options and refusal without kprobes are
tested in test_fsslower.py): where kprobes exist, with threshold 0 it shows each of the test's own
calls on an NFS mount of its own, with its comm, pid and file name."""

from __future__ import annotations

import os

import pytest
from _bpfutil import run_interrupted
from _ext4fs import file_work
from _fsimage import assert_slower_rows
from _nfs import nfs_dir


@pytest.mark.needs_kprobes
def test_shows_each_nfs_call_of_this_process() -> None:
    name = "rbcc-nfsslow.dat"
    with nfs_dir() as root:
        out, _ = run_interrupted(
            ["tool", "nfsslower", "-p", str(os.getpid()), "0"],
            lambda h: h == "Tracing NFS operations\n",
            lambda: file_work(root / name, 3, 2),
            lambda out: out.count(name) >= 8,
        )
    assert_slower_rows(out, name)
