"""--cgroupmap / --mntnsmap filters (rbcc.containers) on the real kernel, through maps pinned under bpffs."""

from __future__ import annotations

import argparse
import ctypes
import os
from pathlib import Path

import pytest
from _bpfutil import cgroup2_root, target_cflags

from rbcc import BPF
from rbcc.containers import filter_by_containers

COUNT = r"""
BPF_ARRAY(seen, u64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET || container_should_be_filtered())
        return 0;
    int z = 0;
    seen.increment(z);
    return 0;
}
"""


def _options(cgroupmap: object = None, mntnsmap: object = None) -> argparse.Namespace:
    return argparse.Namespace(cgroupmap=cgroupmap, mntnsmap=mntnsmap)


def test_without_options_nothing_is_filtered() -> None:
    text = filter_by_containers(_options())
    assert "container_should_be_filtered" in text and "PINNED" not in text


def test_options_name_pinned_maps() -> None:
    text = filter_by_containers(_options(cgroupmap=b"/sys/fs/bpf/cg", mntnsmap="/sys/fs/bpf/ns"))
    assert 'BPF_TABLE_PINNED("hash", u64, u64, cgroupset, 1024, "/sys/fs/bpf/cg")' in text
    assert 'BPF_TABLE_PINNED("hash", u64, u32, mount_ns_set, 1024, "/sys/fs/bpf/ns")' in text


def _own_cgroup_id() -> int:
    with open("/proc/self/cgroup") as groups:
        path = next(line.split(":", 2)[2].strip() for line in groups if line.startswith("0::"))
    return os.stat(cgroup2_root() / path.lstrip("/")).st_ino


def _count_with(options: argparse.Namespace, key_type: type, keys: list[int], leaf: object) -> int:
    """Fill the pinned filter map with ``keys``, then count this process's getppid calls through the filter."""
    with BPF(text=filter_by_containers(options) + COUNT, cflags=target_cflags()) as b:
        chosen = b["cgroupset" if options.cgroupmap else "mount_ns_set"]
        for key in keys:
            chosen[key_type(key)] = leaf
        for _ in range(3):
            os.getppid()
        return int(b["seen"][0].value)


@pytest.mark.needs_root
def test_cgroupmap_keeps_only_the_chosen_cgroups(pin_path: Path) -> None:
    own = _own_cgroup_id()
    options = _options(cgroupmap=str(pin_path))
    assert _count_with(options, ctypes.c_uint64, [own], ctypes.c_uint64(1)) == 3
    pin_path.unlink()
    assert _count_with(options, ctypes.c_uint64, [own + 1000], ctypes.c_uint64(1)) == 0


@pytest.mark.needs_root
def test_mntnsmap_keeps_only_the_chosen_mount_namespaces(pin_path: Path) -> None:
    own = os.stat("/proc/self/ns/mnt").st_ino
    options = _options(mntnsmap=str(pin_path))
    assert _count_with(options, ctypes.c_uint64, [own], ctypes.c_uint32(1)) == 3
    pin_path.unlink()
    assert _count_with(options, ctypes.c_uint64, [own + 1], ctypes.c_uint32(1)) == 0
