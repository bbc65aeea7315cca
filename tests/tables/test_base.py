"""rbcc.table's hash tables and arrays (rbcc._tables.base) and the choice of a table class by map type
(rbcc._tables.factory), driven through a fake in-memory map (no root, no compiled core)."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest
from _fakes import (
    ARRAY,
    DEV_KEY,
    HASH,
    S32,
    U32,
    U64,
    FakeBPF,
    FakeMap,
)
from _pure_rbcc import load
from _tablecheck import hash_table, struct_table

table = load("table")
hist = load("_tables.hist")
errors = load("errors")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- hash tables --


def test_hash_keys_accept_int_key_and_ctypes() -> None:
    t = hash_table()
    t[1] = 10
    t[t.Key(2)] = t.Leaf(20)
    t[ctypes.c_int(3)] = ctypes.c_ulonglong(30)
    assert t[1].value == 10
    assert t[ctypes.c_uint(2)].value == 20
    assert isinstance(t[3], t.Leaf)
    assert sorted(k.value for k in t) == [1, 2, 3]
    keys = list(t.keys())
    assert len(keys) == 3 and all(isinstance(k, t.Key) for k in keys)
    assert len(t) == 3
    assert 2 in t and 9 not in t and "x" not in t
    assert sorted((k.value, v.value) for k, v in t.items()) == [(1, 10), (2, 20), (3, 30)]
    assert sorted(v.value for v in t.values()) == [10, 20, 30]


def test_hash_missing_and_delete() -> None:
    t = hash_table({1: 10})
    with pytest.raises(KeyError):
        t[5]
    assert t.get(5) is None and t.get(5, "d") == "d" and t.lookup(5) is None
    assert t.get(1).value == 10
    del t[1]
    with pytest.raises(KeyError):
        del t[1]
    assert len(t) == 0


def test_hash_update_clear_zero() -> None:
    t = hash_table()
    t.update(1, 5)
    t.update({2: 6})
    assert sorted(v.value for v in t.values()) == [5, 6]
    t.zero()
    assert len(t) == 2 and all(v.value == 0 for v in t.values())
    t.clear()
    assert len(t) == 0


def test_struct_keys_and_bytes() -> None:
    t = struct_table(DEV_KEY, {(7, 3): 9})
    (key,) = list(t)
    assert (key.dev, key.slot) == (7, 3)
    assert t[bytes(key)].value == 9
    with pytest.raises(TypeError):
        t[3]


def test_fallback_types_without_btf() -> None:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_size=4, value_size=12), "raw")
    assert t.Key is ctypes.c_uint32
    assert ctypes.sizeof(t.Leaf) == 12 and t.Leaf._type_ is ctypes.c_ubyte


def test_explicit_types_override_btf() -> None:
    class Leaf(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint64)]

    t = table.table_for(FakeBPF(), FakeMap(HASH, key_desc=S32, value_desc=U64), "t", leaftype=Leaf)
    t[1] = Leaf(4)
    assert t[1].n == 4


# -- arrays --


def array_table(max_entries: int = 4) -> Any:
    return table.table_for(FakeBPF(), FakeMap(ARRAY, max_entries=max_entries, key_desc=U32, value_desc=U64), "a")


def test_array_indices() -> None:
    t = array_table()
    assert type(t) is table.Array
    assert len(t) == 4
    assert [k.value for k in t] == [0, 1, 2, 3]
    t[-1] = 7
    assert t[3].value == 7
    with pytest.raises(IndexError):
        t[4]
    with pytest.raises(IndexError):
        t["0"]
    assert 3 in t and 4 not in t
    assert [v.value for v in t.values()] == [0, 0, 0, 7]


def test_array_delete_and_clear_zero() -> None:
    t = array_table()
    t[1] = 5
    t[2] = 6
    del t[1]
    assert t[1].value == 0 and t[2].value == 6
    t.clear()
    assert [v.value for v in t.values()] == [0, 0, 0, 0]


def test_histogram_table_is_an_array() -> None:
    assert issubclass(table.HistogramTable, table.Array)


# -- factory --


def test_factory_unknown_type() -> None:
    with pytest.raises(errors.BPFError, match="99"):
        table.table_for(FakeBPF(), FakeMap(99), "odd")


def test_type_names() -> None:
    assert table.get_table_type_name(1) == "HASH"
    assert table.get_table_type_name(27) == "RINGBUF"
    assert table.get_table_type_name(1000) == "<unknown>"
    assert table.get_table_type_name(22) == "QUEUE"
    assert table.get_table_type_name(32) == "CGRP_STORAGE"


def test_every_kind_has_a_class() -> None:
    # the map types a user space table can serve, each with bcc's class name where bcc has one
    expected = {
        11: "LpmTrie",
        12: "MapInMapArray",
        13: "MapInMapHash",
        14: "DevMap",
        15: "SockMap",
        16: "CpuMap",
        17: "XskMap",
        18: "SockHash",
        19: "CgroupStorage",
        21: "PerCpuCgroupStorage",
        22: "QueueStack",
        23: "QueueStack",
        24: "SkStorage",
        25: "DevMapHash",
        28: "InodeStorage",
        29: "TaskStorage",
        32: "CgrpStorage",
    }
    for map_type, name in expected.items():
        t = table.table_for(FakeBPF(), FakeMap(map_type, key_desc=U32, value_desc=U64), "m")
        assert type(t).__name__ == name, map_type
