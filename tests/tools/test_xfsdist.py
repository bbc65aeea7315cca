"""xfsdist live (bcc's name for `fsdist -t xfs`; its C, options and refusal without kprobes are tested
in test_fsdist.py): where kprobes exist, it counts the test's own calls on a xfs image of its own."""

from __future__ import annotations

import os

import pytest
from _bpfutil import run_interrupted
from _ext4fs import file_work
from _fsimage import dist_counts, fs_dir


@pytest.mark.needs_kprobes
def test_histograms_count_this_process_xfs_calls() -> None:
    with fs_dir("xfs") as root:
        out, _ = run_interrupted(
            ["tool", "xfsdist", "-p", str(os.getpid())],
            lambda h: h == "Tracing XFS operation latency... Hit Ctrl-C to end.\n",
            lambda: file_work(root / "rbcc-xfsdist.dat", 5, 3),
        )
    assert "usecs" in out, out
    # two opens (to write, then to read), five page writes, an fsync, three page reads; bcc's xfsdist
    # has no getattr histogram
    assert dist_counts(out) == {"open": 2, "write": 5, "fsync": 1, "read": 3}, out
