"""BPF maps on the real kernel, read and written from Python: per-CPU arrays, LRU hashes, struct keys, arrays."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest
from _bpfutil import possible_cpus, target_cflags

from rbcc import BPF
from rbcc.table import Array, HashTable, LruHash, PerCpuArray

pytestmark = pytest.mark.needs_root

PERCPU = r"""
BPF_PERCPU_ARRAY(hits, u64, 4);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int slot = SLOT;
    u64 *v = hits.lookup(&slot);
    if (v)
        *v += 1;
    return 0;
}
"""


def test_percpu_array_sums_the_events() -> None:
    n = 9
    with BPF(text=PERCPU, cflags=target_cflags(SLOT=2)) as b:
        hits = b["hits"]
        assert isinstance(hits, PerCpuArray)
        for _ in range(n):
            os.getppid()
        per_cpu = hits.getvalue(2)
        assert len(per_cpu) == possible_cpus()
        assert sum(per_cpu) == n
        assert hits.sum(2).value == n
        assert hits.max(2).value == max(per_cpu)
        assert hits.sum(0).value == 0
        assert len(hits) == 4


LRU = r"""
BPF_LRU_HASH(recent, u32, u64, 8);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    recent.increment(pid);
    return 0;
}
"""


def test_lru_hash_counts_and_evicts() -> None:
    with BPF(text=LRU, cflags=target_cflags()) as b:
        recent = b["recent"]
        assert isinstance(recent, LruHash)
        assert recent.max_entries == 8
        for _ in range(4):
            os.getppid()
        assert [(k.value, v.value) for k, v in recent.items()] == [(os.getpid(), 4)]
        # Writing far more keys than fit never fails: the least recently used ones go.
        for key in range(1000, 1100):
            recent[key] = key * 2
        assert 0 < len(recent) <= 8
        assert recent[1099].value == 2198
        assert all(v.value == k.value * 2 for k, v in recent.items() if k.value != os.getpid())


STRUCT_KEY = r"""
struct key_t { u32 pid; u32 fd; char tag[8]; };
struct val_t { u64 count; u64 bytes; };
BPF_HASH(m, struct key_t, struct val_t);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct key_t k = {};
    k.pid = bpf_get_current_pid_tgid() >> 32;
    if (k.pid != TARGET)
        return 0;
    k.fd = 42;
    __builtin_memcpy(k.tag, "bpf", 4);
    struct val_t zero = {};
    struct val_t *v = m.lookup_or_try_init(&k, &zero);
    if (v) {
        v->count += 1;
        v->bytes += 10;
    }
    return 0;
}
"""


def test_hash_with_struct_key_from_userspace() -> None:
    with BPF(text=STRUCT_KEY, cflags=target_cflags()) as b:
        m = b["m"]
        assert isinstance(m, HashTable)
        assert [f[0] for f in m.Key._fields_] == ["pid", "fd", "tag"]
        assert [f[0] for f in m.Leaf._fields_] == ["count", "bytes"]
        assert ctypes.sizeof(m.Key) == 16 and ctypes.sizeof(m.Leaf) == 16

        # update / lookup
        a = m.Key(pid=1, fd=2, tag=b"abc")
        m[a] = m.Leaf(count=5, bytes=100)
        assert (m[a].count, m[a].bytes) == (5, 100)
        c = m.Key(pid=3, fd=4, tag=b"zz")
        m.update(c, m.Leaf(count=1, bytes=2))
        assert len(m) == 2
        assert c in m
        assert m.lookup(m.Key(pid=1, fd=2, tag=b"abd")) is None
        assert m.get(m.Key(pid=9), "absent") == "absent"

        # the BPF side writes the same map
        for _ in range(3):
            os.getppid()
        mine = m.Key(pid=os.getpid(), fd=42, tag=b"bpf")
        assert (m[mine].count, m[mine].bytes) == (3, 30)
        items = sorted((k.pid, k.fd, k.tag, v.count, v.bytes) for k, v in m.items())
        assert items == sorted([(1, 2, b"abc", 5, 100), (3, 4, b"zz", 1, 2), (os.getpid(), 42, b"bpf", 3, 30)])

        # delete
        del m[a]
        assert a not in m
        assert len(m) == 2
        with pytest.raises(KeyError):
            del m[a]
        with pytest.raises(KeyError):
            m[a]

        # clear
        m.clear()
        assert len(m) == 0
        assert m.items() == []


# Keys with padding (4 bytes after pid, 3 after each in_t.a, 7 at the end) whose fields are set one
# by one over bytes that differ from call to call, as stack garbage does.
PADDED_KEYS = r"""
struct in_t { u8 a; u32 b; };
struct key_t { u32 pid; u64 tag; struct in_t in[2]; u8 last; };
BPF_HASH(by_value, struct key_t, u64);
BPF_HASH(by_address, struct key_t, u64);
BPF_HASH(updated, struct key_t, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct key_t key;
    __builtin_memset(&key, (u8)bpf_ktime_get_ns() | 1, sizeof(key));
    key.pid = pid;
    key.tag = 7;
    key.in[0].a = 1;
    key.in[0].b = 2;
    key.in[1].a = 3;
    key.in[1].b = 4;
    key.last = 9;
    by_value.increment(key);
    u64 zero = 0, *n = by_address.lookup_or_try_init(&key, &zero);
    if (n)
        *n += 1;
    u64 *seen = updated.lookup(&key);
    u64 next = seen ? *seen + 1 : 1;
    updated.update(&key, &next);
    return 0;
}
"""


def test_padded_struct_keys_are_one_entry_whatever_their_padding_held() -> None:
    with BPF(text=PADDED_KEYS, cflags=target_cflags()) as b:
        for _ in range(6):
            os.getppid()
        # pid, 4 padding bytes, tag, {a, 3, b} twice, last, 7: the padding zeroed
        want = struct.pack("<I4xQB3xIB3xIB7x", os.getpid(), 7, 1, 2, 3, 4, 9)
        for name in ("by_value", "by_address", "updated"):
            assert [(bytes(k), v.value) for k, v in b[name].items()] == [(want, 6)], name


COMPOUND_KEYS = r"""
struct key_t { u32 pid; u32 tag; };
BPF_HASH(counts, struct key_t, u64);
BPF_HASH(seen, struct key_t, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 two = 2;
    counts.increment((struct key_t){pid, 1});
    counts.increment((struct key_t){.pid = pid, .tag = 2}, 10);
    seen.update(&(struct key_t){pid, 3}, &two);
    u64 *v = seen.lookup(&(struct key_t){pid, 3});
    if (v)
        counts.increment((struct key_t){pid, (u32)(*v + 2)}, *v);
    return 0;
}
"""


def test_compound_literal_keys_in_method_calls_are_one_argument() -> None:
    # The commas inside `(struct key_t){a, b}` are not argument separators (bcc's methods are macros
    # in rbcc, and the preprocessor would split there).
    with BPF(text=COMPOUND_KEYS, cflags=target_cflags()) as b:
        for _ in range(3):
            os.getppid()
        me = os.getpid()
        got = {(k.pid, k.tag): v.value for k, v in b["counts"].items()}
        assert got == {(me, 1): 3, (me, 2): 30, (me, 4): 6}
        assert {(k.pid, k.tag): v.value for k, v in b["seen"].items()} == {(me, 3): 2}


ARRAY = r"""
BPF_ARRAY(slots, u32, 7);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int i = 5;
    u32 v = 77;
    slots.update(&i, &v);
    return 0;
}
"""


def test_array_iterates_over_max_entries() -> None:
    with BPF(text=ARRAY, cflags=target_cflags()) as b:
        slots = b["slots"]
        assert isinstance(slots, Array)
        assert len(slots) == slots.max_entries == 7
        assert [k.value for k in slots] == list(range(7))
        assert [v.value for _, v in slots.items()] == [0] * 7
        os.getppid()
        slots[2] = 9
        assert [v.value for v in slots.values()] == [0, 0, 9, 0, 0, 77, 0]
        assert slots[-2].value == 77
        del slots[5]  # an array can't delete: the slot is zeroed
        assert slots[5].value == 0
        with pytest.raises(IndexError):
            slots[7]


SECTIONS = r"""
struct key_t { u32 pid; u64 slot; };
BPF_HISTOGRAM(dist, struct key_t);
BPF_HASH(calls, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 zero = 0;
    // bcc's old lookup_or_init leaves the probe when it fails: its result needs no NULL check
    u64 *n = calls.lookup_or_init(&pid, &zero);
    (*n)++;
    struct key_t key = {.pid = pid, .slot = bpf_log2l(*n)};
    dist.increment(key);
    return 0;
}
"""


def test_struct_keyed_histogram_prints_a_section_per_key(capsys: pytest.CaptureFixture[str]) -> None:
    with BPF(text=SECTIONS, cflags=target_cflags()) as b:
        for _ in range(6):
            os.getppid()
        assert b["calls"][os.getpid()].value == 6
        capsys.readouterr()
        b["dist"].print_log2_hist("calls", "pid")
        out = capsys.readouterr().out
    # counts 1..6 fall in log2 slots 1, 2, 2, 3, 3, 3
    assert f"pid = {os.getpid()}" in out
    rows = [line.split(":") for line in out.splitlines() if "->" in line]
    counts = [int(rest.split("|")[0]) for _, rest in rows]
    assert counts == [1, 2, 3]
