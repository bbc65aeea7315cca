"""Per-CPU tables (rbcc._tables.percpu) over a fake in-memory map: a value per CPU, reducers, histograms."""

from __future__ import annotations

import struct

import pytest
from _fakes import (
    NCPU,
    PERCPU_ARRAY,
    PERCPU_HASH,
    U32,
    U64,
    FakeBPF,
    FakeMap,
)
from _pure_rbcc import load

table = load("table")
hist = load("_tables.hist")
errors = load("errors")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- per-CPU --


def test_percpu_hash_values() -> None:
    m = FakeMap(PERCPU_HASH, value_size=4, key_desc=U32, value_desc=U32)
    t = table.table_for(FakeBPF(), m, "pc")
    assert type(t) is table.PerCpuHash and t.total_cpu == NCPU
    t[1] = [1, 2, 3, 4]
    assert list(t[1]) == [1, 2, 3, 4]
    assert list(t.getvalue(1)) == [1, 2, 3, 4]
    assert t.sum(1).value == 10 and isinstance(t.sum(1), t.sLeaf)
    assert t.max(1).value == 4
    assert t.average(1) == 2.5
    assert m.data[struct.pack("<I", 1)][0] == struct.pack("<I", 1) + bytes(4)  # 8-byte per-CPU stride
    t.zero()
    assert list(t[1]) == [0, 0, 0, 0]


def test_percpu_reducer() -> None:
    m = FakeMap(PERCPU_HASH, key_desc=U32, value_desc=U64)
    t = table.table_for(FakeBPF(), m, "pc", reducer=lambda a, b: a + b)
    t[1] = t.Leaf(1, 2, 3, 4)
    assert t[1] == 10
    assert list(t.getvalue(1)) == [1, 2, 3, 4]


def test_percpu_array() -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERCPU_ARRAY, max_entries=2, key_desc=U32, value_desc=U64), "pa")
    assert type(t) is table.PerCpuArray
    assert list(t[0]) == [0] * NCPU
    t[1] = [5] * NCPU
    assert t.sum(1).value == 20
    del t[1]
    assert list(t[1]) == [0] * NCPU
