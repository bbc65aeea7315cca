"""The block tools' shared helpers: request flag names, -d DISK, disk names by device number."""

from __future__ import annotations

import argparse
import os

import pytest
from _blockio import root_disk

from rbcc.tools import _block


def test_flags_read_as_bcc_prints_them() -> None:
    assert _block.flags_name(0) == "Read"
    assert _block.flags_name(1) == "Write"
    # a direct write: REQ_SYNC | REQ_IDLE over the write op
    assert _block.flags_name(0x8801) == "Idle-Sync-Write"
    assert _block.flags_name(1 | 1 << (8 + 11)) == "ReadAhead-Write"
    assert _block.flags_name(4) == "Unknown"


def test_disk_arg_resolves_dev_nodes() -> None:
    rdev = os.stat(f"/dev/{root_disk()}").st_rdev
    assert _block.disk_arg(root_disk()) == _block.Disk(root_disk(), os.major(rdev), os.minor(rdev))
    with pytest.raises(argparse.ArgumentTypeError, match="no such disk 'nope-rbcc'"):
        _block.disk_arg("nope-rbcc")


def test_disk_filter_and_names() -> None:
    assert _block.disk_filter(None) == ""
    text = _block.disk_filter(_block.Disk("vdz", 254, 16))
    assert "rq->q->disk->major != 254 || rq->q->disk->first_minor != 16" in text and "return 0;" in text
    rdev = os.stat(f"/dev/{root_disk()}").st_rdev
    assert _block.disk_names()[(os.major(rdev), os.minor(rdev))] == root_disk()
    assert _block.mkdev(8, 1) == (8 << 20) | 1
