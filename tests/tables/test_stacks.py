"""Stack trace tables (rbcc._tables.stacks) over a fake in-memory map: walking a stack's frames."""

from __future__ import annotations

import struct

import pytest
from _fakes import (
    STACK,
    U32,
    FakeBPF,
    FakeMap,
)
from _pure_rbcc import load

table = load("table")
hist = load("_tables.hist")
errors = load("errors")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- stack traces --


def test_stack_walk() -> None:
    m = FakeMap(STACK, value_size=127 * 8, key_desc=U32)
    t = table.table_for(FakeBPF(), m, "stacks")
    assert type(t) is table.StackTrace and t.Leaf._length_ == 127
    m.data[struct.pack("<I", 5)] = struct.pack("<3Q", 0xFFFF1, 0xFFFF2, 0) + bytes(124 * 8)
    assert list(t.walk(5)) == [0xFFFF1, 0xFFFF2]
    assert list(t.walk(5, resolve=hex)) == ["0xffff1", "0xffff2"]
    assert len(t[5]) == 127
    with pytest.raises(KeyError):
        t.walk(6)
    with pytest.raises(KeyError):
        t.walk(-14)  # a failed bpf_get_stackid() result
    t.clear()
    assert len(t) == 0
