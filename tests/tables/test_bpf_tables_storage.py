"""Local storage maps on the real kernel: task, socket, inode and cgroup storage, keyed from user
space by an fd of their owner, and the older cgroup storage whose entries follow a program's
cgroup attachment."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import cgroup2_root, target_cflags

from rbcc import BPF, _core
from rbcc.errors import BPFError
from rbcc.table import CgroupStorage, CgrpStorage, InodeStorage, PerCpuCgroupStorage, SkStorage, TaskStorage

pytestmark = pytest.mark.needs_root

STORAGE = r"""
struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, int); __type(value, u64); }
    calls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, int); __type(value, u64); }
    per_sock SEC(".maps");
struct tag { u32 kind; char label[12]; };
struct { __uint(type, BPF_MAP_TYPE_INODE_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, int); __type(value, struct tag); }
    per_inode SEC(".maps");

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u64 *n = bpf_task_storage_get(&calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (n)
        *n += 1;
    return 0;
}
"""


@pytest.fixture(scope="module")
def bpf() -> Iterator[BPF]:
    with BPF(text=STORAGE, cflags=target_cflags()) as b:
        yield b


def test_task_storage_counts_per_task(bpf: BPF) -> None:
    calls = bpf["calls"]
    assert isinstance(calls, TaskStorage)
    before = calls.lookup_pid(os.getpid())
    for _ in range(3):
        os.getppid()
    assert calls.lookup_pid(os.getpid()).value == (before.value if before else 0) + 3
    # user space writes and deletes by pidfd too
    pidfd = os.pidfd_open(os.getpid())
    try:
        calls[pidfd] = 100
        os.getppid()
        assert calls[pidfd].value == 101
        del calls[pidfd]
        assert calls.get(pidfd) is None
    finally:
        os.close(pidfd)
    # a task the program never saw has no entry until user space gives it one
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert calls.lookup_pid(child.pid) is None
        calls.update_pid(child.pid, 7)
        assert calls.lookup_pid(child.pid).value == 7
        calls.delete_pid(child.pid)
        with pytest.raises(KeyError):
            calls.delete_pid(child.pid)
    finally:
        child.communicate(b"")


def test_local_storage_cannot_be_listed(bpf: BPF) -> None:
    calls = bpf["calls"]
    with pytest.raises(BPFError, match="task local storage: the kernel can't list its entries"):
        list(calls)
    with pytest.raises(BPFError, match="can't list"):
        len(calls)
    with pytest.raises(BPFError, match="can't list"):
        calls.items()
    assert bool(calls)


def test_socket_storage_is_keyed_by_the_socket(bpf: BPF) -> None:
    per_sock = bpf["per_sock"]
    assert isinstance(per_sock, SkStorage)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as b:
        per_sock[a] = 11
        per_sock[b.fileno()] = 22
        assert (per_sock[a].value, per_sock[b].value) == (11, 22)
        del per_sock[a]
        assert a not in per_sock and b in per_sock
        with open(os.devnull) as not_a_socket, pytest.raises(BPFError):
            per_sock[not_a_socket] = 1


def test_inode_storage_follows_the_inode_not_the_fd(bpf: BPF, tmp_path: Path) -> None:
    per_inode = bpf["per_inode"]
    assert isinstance(per_inode, InodeStorage)
    target = tmp_path / "file"
    target.write_text("x")
    with open(target) as first:
        per_inode[first] = per_inode.Leaf(kind=3, label=b"tagged")
        assert per_inode.key_sprintf(first.fileno()) == b"0x%x" % first.fileno()
    # another open of the same file reaches the same storage
    with open(target) as second:
        tag = per_inode[second]
        assert (tag.kind, tag.label) == (3, b"tagged")
        assert per_inode.leaf_sprintf(tag) == b'{ 0x3 "tagged" }'
    with open(tmp_path / "other", "w") as other:
        assert per_inode.get(other) is None


@pytest.mark.skipif(
    os.geteuid() == 0 and not _core.kernel_enum_has_val("bpf_map_type", "BPF_MAP_TYPE_CGRP_STORAGE"),
    reason="this kernel has no BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2+)",
)
def test_cgroup_local_storage_is_keyed_by_a_cgroup_fd(cgroup: Path) -> None:
    text = r"""
struct { __uint(type, BPF_MAP_TYPE_CGRP_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, int); __type(value, u64); }
    per_cgroup SEC(".maps");
"""
    with BPF(text=text) as b:
        per_cgroup = b["per_cgroup"]
        assert isinstance(per_cgroup, CgrpStorage)
        fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert per_cgroup.get(fd) is None
            per_cgroup[fd] = 5
            assert per_cgroup[fd].value == 5
            del per_cgroup[fd]
            assert per_cgroup.get(fd) is None
        finally:
            os.close(fd)


# -- the older cgroup storage: entries exist while a cgroup program using it is attached --

CGROUP_SKB = r"""
struct { __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE); __type(key, struct bpf_cgroup_storage_key); __type(value, u64); }
    packets SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
         __type(key, struct bpf_cgroup_storage_key); __type(value, u64); }
    bytes_out SEC(".maps");

int SEC("cgroup_skb/egress") count_egress(struct __sk_buff *skb) {
    u64 *n = bpf_get_local_storage(&packets, 0);
    __sync_fetch_and_add(n, 1);
    u64 *b = bpf_get_local_storage(&bytes_out, 0);
    *b += skb->len;
    return 1;
}
"""

BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_CGROUP_INET_EGRESS = 8, 9, 1
libc = ctypes.CDLL(None, use_errno=True)


class _AttachAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32),
        ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32),
        ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


def _bpf_cmd(cmd: int, attr: _AttachAttr) -> None:
    if libc.syscall(321, cmd, ctypes.byref(attr), ctypes.sizeof(attr)) < 0:  # SYS_bpf on x86-64
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@pytest.fixture
def cgroup() -> Iterator[Path]:
    path = cgroup2_root() / f"rbcc-test-{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        path.rmdir()


def _send_from(cgroup: Path, count: int) -> None:
    """Send ``count`` UDP datagrams from a child process that is moved into ``cgroup`` first."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        code = (
            "import socket, sys; sys.stdin.read(1); s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range({count}): s.sendto(b'x' * 10, ('127.0.0.1', {port}))"
        )
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
        (cgroup / "cgroup.procs").write_text(str(child.pid))
        child.communicate(b"go")
        assert child.returncode == 0
        for _ in range(count):
            assert sink.recv(100) == b"x" * 10


def test_cgroup_storage_counts_the_attached_cgroups_packets(cgroup: Path) -> None:
    with BPF(text=CGROUP_SKB) as b:
        packets, bytes_out = b["packets"], b["bytes_out"]
        assert isinstance(packets, CgroupStorage)
        assert isinstance(bytes_out, PerCpuCgroupStorage)
        assert packets.items() == []  # nothing attached: no entries
        cg_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
        attr = _AttachAttr(cg_fd, b._obj.prog_fd("count_egress"), BPF_CGROUP_INET_EGRESS, 0, 0)
        _bpf_cmd(BPF_PROG_ATTACH, attr)
        try:
            ((key, value),) = packets.items()
            assert (key.cgroup_inode_id, key.attach_type, value.value) == (cgroup.stat().st_ino, 1, 0)
            _send_from(cgroup, 3)
            # a key can also be given as (cgroup path, attach type)
            here = (str(cgroup), BPF_CGROUP_INET_EGRESS)
            assert packets[here].value == 3
            assert sum(bytes_out.getvalue(here)) >= 3 * 10
            packets[here] = 1000
            _send_from(cgroup, 1)
            assert packets[key].value == 1001
            with pytest.raises(BPFError, match="live as long as the program's attachment"):
                del packets[key]
            assert packets.key_sprintf(key) == b"{ 0x%x 0x1 }" % cgroup.stat().st_ino
        finally:
            _bpf_cmd(BPF_PROG_DETACH, attr)
            os.close(cg_fd)
