"""nfsdist live (bcc's name for `fsdist -t nfs`; its C, options and refusal without kprobes are tested
in test_fsdist.py): where kprobes exist, it counts the test's own calls on an NFS mount of its own."""

from __future__ import annotations

import os

import pytest
from _bpfutil import run_interrupted
from _ext4fs import file_work
from _fsimage import dist_counts
from _nfs import nfs_dir


@pytest.mark.needs_kprobes
def test_histograms_count_this_process_nfs_calls() -> None:
    with nfs_dir() as root:

        def work() -> None:
            file_work(root / "rbcc-nfsdist.dat", 5, 3)
            os.stat(root / "rbcc-nfsdist.dat")  # nfs_getattr

        out, _ = run_interrupted(
            ["tool", "nfsdist", "-p", str(os.getpid())],
            lambda h: h == "Tracing NFS operation latency... Hit Ctrl-C to end.\n",
            work,
        )
    assert "usecs" in out, out
    counts = dist_counts(out)
    # the client may revalidate attributes on its own too: the test's stat is one getattr at least
    assert counts.pop("getattr", 0) >= 1, out
    assert counts == {"open": 2, "write": 5, "fsync": 1, "read": 3}, out
