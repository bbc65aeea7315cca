"""What the kernel says a table is (its flags as created, its map id), bcc's key walk one key at a time
(``Table.next``, ``Table.Iter``), and rbcc's key and value type checks, stricter than bcc's on purpose.
Real programs, real maps."""

from __future__ import annotations

import ctypes
import os

import pytest
from _bpfutil import target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root

BPF_F_NO_PREALLOC = 1
BPF_F_RDONLY_PROG = 1 << 7

PROGRAM = r"""
struct key_t { u32 pid; char comm[16]; };
BPF_F_TABLE("hash", u32, u64, sparse, 1024, BPF_F_NO_PREALLOC);
BPF_F_TABLE("array", int, u64, readonly, 4, BPF_F_RDONLY_PROG);
BPF_HASH(plain, u32, u64);
BPF_HASH(by_task, struct key_t, u64);
BPF_ARRAY(counts, u64, 4);
BPF_LPM_TRIE(trie);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    sparse.increment(pid);
    plain.increment(pid);
    return 0;
}
"""


def _fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_flags_are_the_kernels_for_each_map() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        assert b["sparse"].flags == BPF_F_NO_PREALLOC  # BPF_F_TABLE's flags argument
        assert b["readonly"].flags == BPF_F_RDONLY_PROG
        assert b["plain"].flags == 0  # BPF_HASH preallocates, as in bcc
        assert b["counts"].flags == 0
        assert b["trie"].flags & BPF_F_NO_PREALLOC  # the kernel requires it of LPM tries
        # as the kernel reports it for the map's fd (what bpftool prints as "flags 0x1")
        for name in ("sparse", "readonly", "plain", "trie"):
            assert b[name].flags == int(_fdinfo(b[name].map_fd)["map_flags"], 16), name


def test_map_id_is_the_kernels() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        ids = {name: b[name].map_id for name in ("sparse", "plain", "counts")}
        assert len(set(ids.values())) == 3 and all(i > 0 for i in ids.values())
        for name, map_id in ids.items():
            assert int(_fdinfo(b[name].map_fd)["map_id"]) == map_id


def test_next_walks_the_keys_in_the_kernels_order() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        plain = b["plain"]
        for k in (3, 5, 7):
            plain[ctypes.c_uint32(k)] = ctypes.c_uint64(k * 10)
        walked = []
        key = None
        while True:
            try:
                key = plain.next(key)
            except StopIteration:
                break
            walked.append(key.value)
        assert sorted(walked) == [3, 5, 7]
        assert sorted(k.value for k in plain.Iter(plain)) == [3, 5, 7]
        assert [k.value for k in b["counts"].Iter(b["counts"])] == [0, 1, 2, 3]


def test_a_key_of_the_wrong_size_is_a_type_error_naming_the_expected_type() -> None:
    # bcc hands the kernel a pointer to whatever ctypes object it is given (a struct of another size is
    # read past its end, or short); rbcc refuses keys and values that are not the map's type or its size,
    # naming the type it expected. Scalars convert by value, as in bcc (c_uint64(5) for a u32 key is 5).
    class Other(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]

    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        os.getppid()
        plain = b["plain"]
        assert plain[ctypes.c_uint32(os.getpid())].value >= 1
        assert plain[os.getpid()].value >= 1 and plain[ctypes.c_uint64(os.getpid())].value >= 1
        with pytest.raises(TypeError, match=r"key must be 4 bytes \(c_uint\), got 8"):
            plain[Other(1, 2)]
        with pytest.raises(TypeError, match=r"key must be 4 bytes \(c_uint\), got 2"):
            plain[b"\x01\x02"]
        with pytest.raises(TypeError, match=r"value must be 8 bytes \(c_ulong\), got 4"):
            plain[ctypes.c_uint32(1)] = (ctypes.c_uint8 * 4)()
        with pytest.raises(TypeError, match=r"key must be a key_t \(or an int for a scalar\), got int"):
            b["by_task"][5]
