"""bcc's batch table methods on the real kernel: items_lookup_batch, items_lookup_and_delete_batch,
items_delete_batch and items_update_batch, on every hash and array table, and the entry-by-entry
path for map types the kernel has no batch command for."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator

import pytest
from _bpfutil import possible_cpus, target_cflags

from rbcc import BPF
from rbcc.errors import KernelFeatureError
from rbcc.table import Array, DevMap, HashTable, LpmTrie, LruHash, LruPerCpuHash, PerCpuArray, PerCpuHash

pytestmark = pytest.mark.needs_root

MAPS = r"""
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096);
         __type(key, u32); __type(value, u64); } h SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 64);
         __type(key, u32); __type(value, u64); } lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 64);
         __type(key, u32); __type(value, u32); } pch SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, 64);
         __type(key, u32); __type(value, u64); } lpch SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 16);
         __type(key, u32); __type(value, s32); } arr SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 8);
         __type(key, u32); __type(value, u64); } parr SEC(".maps");
struct key_t { u32 pid; char tag[4]; u64 slot; };
struct val_t { u64 count; u32 last; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
         __type(key, struct key_t); __type(value, struct val_t); } sh SEC(".maps");
struct lpm_key { u32 prefixlen; u8 addr[4]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16); __type(key, struct lpm_key); __type(value, u64);
         __uint(map_flags, BPF_F_NO_PREALLOC); } lpm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 8);
         __type(key, u32); __type(value, u32); } dev SEC(".maps");

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 one = 1, *n;
    for (u32 k = 100; k < 103; k++) {
        n = bpf_map_lookup_elem(&h, &k);
        if (n)
            __sync_fetch_and_add(n, 1);
        else
            bpf_map_update_elem(&h, &k, &one, BPF_NOEXIST);
    }
    u32 c = 7;
    u32 *pc = bpf_map_lookup_elem(&pch, &c);
    if (pc)
        *pc += 1;
    else {
        u32 first = 1;
        bpf_map_update_elem(&pch, &c, &first, BPF_NOEXIST);
    }
    u32 slot = 3;
    u64 *p = bpf_map_lookup_elem(&parr, &slot);
    if (p)
        *p += 1;
    struct key_t key = {.pid = pid, .tag = "bpf", .slot = 9};
    struct val_t zero = {}, *v = bpf_map_lookup_elem(&sh, &key);
    if (!v) {
        bpf_map_update_elem(&sh, &key, &zero, BPF_NOEXIST);
        v = bpf_map_lookup_elem(&sh, &key);
    }
    if (v) {
        v->count += 1;
        v->last = 42;
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def bpf() -> Iterator[BPF]:
    with BPF(text=MAPS, cflags=target_cflags()) as b:
        yield b


@pytest.fixture(autouse=True)
def empty_maps(bpf: BPF) -> None:
    for name in ("h", "lru", "pch", "lpch", "sh", "lpm", "dev"):
        bpf[name].clear()
    for name in ("arr", "parr"):
        bpf[name].zero()


def ints(pairs: object) -> dict[int, int]:
    return {k.value: v.value for k, v in pairs}  # type: ignore[attr-defined]


def test_lookup_batch_reads_what_the_program_wrote(bpf: BPF) -> None:
    h = bpf["h"]
    assert isinstance(h, HashTable)
    for _ in range(4):
        os.getppid()
    assert ints(h.items_lookup_batch()) == {100: 4, 101: 4, 102: 4}
    # a lookup leaves the map as it was
    assert ints(h.items()) == {100: 4, 101: 4, 102: 4}


@pytest.mark.parametrize("kind", ["BPF_MAP_TYPE_HASH", "BPF_MAP_TYPE_LRU_HASH"])
def test_batches_of_more_entries_than_one_syscall_returns(kind: str) -> None:
    # The core asks for 16384 entries a syscall, resuming from the kernel's token; a hash map of 2^17
    # buckets or more is read as two halves of its buckets at once, whose overlap must count once.
    text = f"""struct {{ __uint(type, {kind}); __uint(max_entries, 200000);
                 __type(key, u32); __type(value, u64); }} big SEC(".maps");"""
    with BPF(text=text) as b:
        h = b["big"]
        n = 150000
        keys = (h.Key * n)(*range(n))
        values = (h.Leaf * n)(*(i * 3 for i in range(n)))
        h.items_update_batch(keys, values)
        assert len(h) == n
        assert ints(h.items_lookup_batch()) == {i: i * 3 for i in range(n)}
        listed = [k.value for k in h]
        assert len(listed) == n and set(listed) == set(range(n))
        got = ints(h.items_lookup_and_delete_batch())
        assert got == {i: i * 3 for i in range(n)}
        assert len(h) == 0


def test_lookup_and_delete_batch_is_a_lazy_generator_as_in_bcc(bpf: BPF) -> None:
    h = bpf["h"]
    os.getppid()
    gen = h.items_lookup_and_delete_batch()
    assert len(h) == 3  # nothing read or deleted until iterated
    assert ints(gen) == {100: 1, 101: 1, 102: 1}
    assert len(h) == 0
    # the program's next events start from scratch
    os.getppid()
    assert ints(h.items_lookup_and_delete_batch()) == {100: 1, 101: 1, 102: 1}


def test_delete_batch_with_keys_and_with_none(bpf: BPF) -> None:
    h = bpf["h"]
    h.items_update_batch((h.Key * 5)(*range(5)), (h.Leaf * 5)(*range(10, 15)))
    h.items_delete_batch((h.Key * 2)(1, 3))
    assert ints(h.items()) == {0: 10, 2: 12, 4: 14}
    # plain sequences of keys work too
    h.items_delete_batch([4])
    assert ints(h.items()) == {0: 10, 2: 12}
    # None means everything
    h.items_delete_batch()
    assert len(h) == 0


def test_delete_batch_stops_at_a_missing_key(bpf: BPF) -> None:
    h = bpf["h"]
    h.items_update_batch([1, 2], [10, 20])
    with pytest.raises(KeyError, match="key #1 of the batch is not in the map"):
        h.items_delete_batch([1, 5, 2])
    # the kernel deleted the keys before the missing one, and stopped there
    assert ints(h.items()) == {2: 20}


def test_update_batch_checks_its_arguments(bpf: BPF) -> None:
    h = bpf["h"]
    with pytest.raises(ValueError, match="keys array length != values array length"):
        h.items_update_batch((h.Key * 2)(1, 2), (h.Leaf * 3)(1, 2, 3))
    with pytest.raises(ValueError, match="more than the map's 16 entries"):
        bpf["arr"].items_update_batch(list(range(17)), [0] * 17)
    with pytest.raises(TypeError, match="ctypes array"):
        h.items_update_batch(5, 6)
    with pytest.raises(TypeError, match="ctypes array"):
        h.items_delete_batch(b"\x01\x00\x00\x00")
    assert len(h) == 0  # nothing was written


def test_struct_keys_and_values(bpf: BPF) -> None:
    sh = bpf["sh"]
    for _ in range(2):
        os.getppid()
    mine = sh.Key(pid=os.getpid(), tag=b"bpf", slot=9)
    other = sh.Key(pid=1, tag=b"usr", slot=2)
    sh.items_update_batch((sh.Key * 1)(other), (sh.Leaf * 1)(sh.Leaf(count=5, last=6)))
    got = {(k.pid, k.tag, k.slot): (v.count, v.last) for k, v in sh.items_lookup_batch()}
    assert got == {(os.getpid(), b"bpf", 9): (2, 42), (1, b"usr", 2): (5, 6)}
    sh.items_delete_batch([mine])
    assert [(k.pid, k.tag) for k in sh] == [(1, b"usr")]


def test_lru_hash(bpf: BPF) -> None:
    lru = bpf["lru"]
    assert isinstance(lru, LruHash)
    lru.items_update_batch(list(range(10)), [i * i for i in range(10)])
    assert ints(lru.items_lookup_and_delete_batch()) == {i: i * i for i in range(10)}
    assert len(lru) == 0


def test_percpu_hash_values_are_per_cpu_arrays(bpf: BPF) -> None:
    pch = bpf["pch"]
    assert isinstance(pch, PerCpuHash)
    # a u32 value: each CPU's copy sits 8-byte aligned in the kernel's batch buffer
    for _ in range(5):
        os.getppid()
    ((key, value),) = list(pch.items_lookup_batch())
    assert key.value == 7
    assert len(value) == possible_cpus()
    assert sum(value) == 5
    per_cpu = (pch.sLeaf * pch.total_cpu)(*range(1, pch.total_cpu + 1))
    pch.items_update_batch([8], [per_cpu])
    assert list(pch.getvalue(8)) == list(range(1, pch.total_cpu + 1))
    got = {k.value: list(v) for k, v in pch.items_lookup_and_delete_batch()}
    assert got[8] == list(range(1, pch.total_cpu + 1))
    assert len(pch) == 0


def test_lru_percpu_hash_with_a_reducer() -> None:
    with BPF(text=MAPS, cflags=target_cflags()) as b:
        lpch = b.get_table("lpch", reducer=lambda x, y: x + y)
        assert isinstance(lpch, LruPerCpuHash)
        lpch.items_update_batch([1, 2], [(lpch.sLeaf * lpch.total_cpu)(*([3] * lpch.total_cpu))] * 2)
        # the reducer folds batch values as it folds items()
        assert dict((k.value, v) for k, v in lpch.items_lookup_batch()) == {
            1: 3 * lpch.total_cpu,
            2: 3 * lpch.total_cpu,
        }


def test_array_lookup_and_update(bpf: BPF) -> None:
    arr = bpf["arr"]
    assert isinstance(arr, Array)
    arr.items_update_batch([2, 5], [-7, 9])
    assert ints(arr.items_lookup_batch()) == {i: {2: -7, 5: 9}.get(i, 0) for i in range(16)}


def test_array_deletes_by_zeroing_as_del_does(bpf: BPF) -> None:
    # The kernel has no delete for arrays (ENOTSUPP); bcc's Array zeroes on del, and so do the batches.
    arr = bpf["arr"]
    with pytest.raises(KernelFeatureError, match="BPF_MAP_DELETE_BATCH is not supported for map 'arr'"):
        arr.map.delete_batch(bytes(4))
    arr.items_update_batch([1, 2, 3], [10, 20, 30])
    arr.items_delete_batch([2])
    assert [v.value for v in arr.values()][:4] == [0, 10, 0, 30]
    got = ints(arr.items_lookup_and_delete_batch())
    assert (got[1], got[3], len(got)) == (10, 30, 16)
    assert all(v.value == 0 for v in arr.values())
    arr.items_update_batch([4], [4])
    arr.items_delete_batch()
    assert all(v.value == 0 for v in arr.values())


def test_percpu_array(bpf: BPF) -> None:
    parr = bpf["parr"]
    assert isinstance(parr, PerCpuArray)
    for _ in range(3):
        os.getppid()
    got = {k.value: list(v) for k, v in parr.items_lookup_and_delete_batch()}
    assert len(got) == 8 and sum(got[3]) == 3
    assert parr.sum(3).value == 0  # zeroed


def test_lpm_trie_deletes_what_it_read(bpf: BPF) -> None:
    # An LPM trie has batch lookup, update and delete but no lookup-and-delete: read, then delete.
    lpm = bpf["lpm"]
    assert isinstance(lpm, LpmTrie)
    with pytest.raises(KernelFeatureError, match="BPF_MAP_LOOKUP_AND_DELETE_BATCH"):
        lpm.map.lookup_and_delete_batch()
    keys = [lpm._as_key((8, "10.0.0.0")), lpm._as_key((24, "10.1.2.0"))]
    lpm.items_update_batch(keys, [1, 2])
    assert lpm[(32, "10.1.2.3")].value == 2
    assert lpm[(32, "10.9.9.9")].value == 1
    got = {(k.prefixlen, bytes(k.addr)): v.value for k, v in lpm.items_lookup_and_delete_batch()}
    assert got == {(8, bytes([10, 0, 0, 0])): 1, (24, bytes([10, 1, 2, 0])): 2}
    assert lpm.get((32, "10.1.2.3")) is None


def test_a_map_without_batch_commands_goes_entry_by_entry(bpf: BPF) -> None:
    dev = bpf["dev"]
    assert isinstance(dev, DevMap)
    for call in (dev.map.lookup_batch, dev.map.lookup_and_delete_batch):
        with pytest.raises(KernelFeatureError, match="not supported for map 'dev'"):
            call()
    lo = 1  # the loopback device's ifindex
    dev.items_update_batch([0, 3], [lo, lo])
    assert ints(dev.items_lookup_batch()) == {0: lo, 3: lo}
    dev.items_delete_batch([3])
    assert ints(dev.items()) == {0: lo}
    dev.items_delete_batch([5])  # the kernel's devmap deletes an empty slot without complaint
    assert ints(dev.items_lookup_and_delete_batch()) == {0: lo}
    assert dev.items() == []


@pytest.mark.parametrize("name", ["h", "pch", "lpch", "arr", "parr", "sh"])
def test_items_read_in_batches_match_entry_by_entry(bpf: BPF, name: str) -> None:
    # items() and values() read with the batch calls; iteritems() one entry at a time
    for _ in range(3):
        os.getppid()
    t = bpf[name]
    if name == "h":
        t.items_update_batch(list(range(40)), list(range(40)))
    elif name == "sh":
        t.items_update_batch([t.Key(pid=i, slot=i) for i in range(40)], [t.Leaf(count=i) for i in range(40)])
    elif name == "lpch":
        t.items_update_batch([1, 2], [(t.sLeaf * t.total_cpu)(*range(t.total_cpu))] * 2)
    one_by_one = [(bytes(k), bytes(v)) for k, v in t.iteritems()]
    assert one_by_one, name
    assert sorted((bytes(k), bytes(v)) for k, v in t.items()) == sorted(one_by_one)
    assert sorted(bytes(v) for v in t.values()) == sorted(v for _, v in one_by_one)


@pytest.mark.parametrize("name", ["h", "pch", "lpch", "arr", "parr", "sh"])
def test_batch_reads_give_the_types_entry_by_entry_reads_give(bpf: BPF, name: str) -> None:
    # items(), values(), keys(), iteration and len() read in batches (keys too, for the hash maps),
    # and return what bcc returns: instances of the table's Key and Leaf (per-CPU: sLeaf * CPUs)
    for _ in range(3):
        os.getppid()
    t = bpf[name]
    if name == "h":
        t.items_update_batch(list(range(2000)), list(range(2000)))
    elif name == "lpch":
        t.items_update_batch([1, 2], [(t.sLeaf * t.total_cpu)(*range(t.total_cpu))] * 2)
    one_by_one = list(t.iteritems())
    keys = {bytes(k) for k, _ in one_by_one}
    assert one_by_one
    for k, v in t.items():
        assert type(k) is t.Key and type(v) is t.Leaf
    assert all(type(v) is t.Leaf for v in t.values())
    assert [type(k) for k in t.keys()] == [t.Key] * len(keys)
    assert {bytes(k) for k in t} == {bytes(k) for k in t.keys()} == keys
    assert len(t) == len(keys)
    if t.map.map_type in (1, 5, 10):  # hash maps: the batch listing is the kernel's get_next_key listing
        assert sorted(t.map.keys()) == sorted(keys)


def test_batch_reads_of_a_hash_are_bccs_ctypes() -> None:
    with BPF(text="BPF_HASH(counts, u32, u64); BPF_PERCPU_HASH(pc, u32, u32);") as b:
        counts, pc = b["counts"], b["pc"]
        counts.items_update_batch([1, 2], [10, 20])
        assert sorted((type(k), k.value, type(v), v.value) for k, v in counts.items()) == [
            (ctypes.c_uint, 1, ctypes.c_ulong, 10),
            (ctypes.c_uint, 2, ctypes.c_ulong, 20),
        ]
        assert sorted(v.value for v in counts.values()) == [10, 20]
        assert sorted(k.value for k in counts) == [1, 2]
        pc[ctypes.c_uint(3)] = (pc.sLeaf * pc.total_cpu)(*range(pc.total_cpu))
        ((key, value),) = pc.items()
        assert (type(key), key.value) == (ctypes.c_uint, 3)
        assert value._type_ is ctypes.c_uint and list(value) == list(range(pc.total_cpu))
