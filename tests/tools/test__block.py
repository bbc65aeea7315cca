"""The block tools' shared helpers: request flag names, -d DISK, disk names by device number."""

from __future__ import annotations

import argparse
import os

import pytest
from _blockio import root_disk

from rbcc._tools import block


def test_flags_read_as_bcc_prints_them() -> None:
    assert block.flags_name(0) == "Read"
    assert block.flags_name(1) == "Write"
    # a direct write: REQ_SYNC | REQ_IDLE over the write op
    assert block.flags_name(0x8801) == "Idle-Sync-Write"
    assert block.flags_name(1 | 1 << (8 + 11)) == "ReadAhead-Write"
    assert block.flags_name(4) == "Unknown"


def test_disk_arg_resolves_dev_nodes() -> None:
    rdev = os.stat(f"/dev/{root_disk()}").st_rdev
    assert block.disk_arg(root_disk()) == block.Disk(root_disk(), os.major(rdev), os.minor(rdev))
    with pytest.raises(argparse.ArgumentTypeError, match="no such disk 'nope-rbcc'"):
        block.disk_arg("nope-rbcc")


def test_disk_filter_and_names() -> None:
    assert block.disk_filter(None) == ""
    text = block.disk_filter(block.Disk("vdz", 254, 16))
    assert "rq->q->disk->major != 254 || rq->q->disk->first_minor != 16" in text and "return 0;" in text
    rdev = os.stat(f"/dev/{root_disk()}").st_rdev
    assert block.disk_names()[(os.major(rdev), os.minor(rdev))] == root_disk()
    assert block.mkdev(8, 1) == (8 << 20) | 1


def test_a_kprobe_only_tool_names_the_missing_feature_and_its_alternative() -> None:
    from rbcc import _core
    from rbcc.errors import KernelFeatureError

    if _core.has_kprobes():
        pytest.skip("this kernel has kprobes: nothing to refuse")
    with pytest.raises(KernelFeatureError) as info:
        block.need_kprobes("rbcc-test", "vfs_read", "no tracepoint", "use the tracepoint tool")
    assert (info.value.feature, info.value.alternative) == ("kprobes", "use the tracepoint tool")
    assert str(info.value).startswith("needs kprobes on vfs_read (no tracepoint), and this kernel has none")
