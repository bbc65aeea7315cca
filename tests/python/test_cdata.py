"""The core's cdata_list and cdata_items: ctypes objects made from a batch buffer, as from_buffer_copy
makes them (and as rbcc._tables.batch's pure-Python stand-ins do where the core is not built)."""

from __future__ import annotations

import ctypes
import gc
import struct

import pytest

from rbcc import _core
from rbcc._tables.batch import _py_cdata_items, _py_cdata_list


class Key(ctypes.Structure):
    _fields_ = [("pid", ctypes.c_uint32), ("comm", ctypes.c_char * 4), ("slot", ctypes.c_uint64)]


def keys_bytes(n: int) -> bytes:
    return b"".join(struct.pack("<I4sQ", i, b"k%d" % i, i * 10) for i in range(n))


def both(ctype: type, data: bytes, layout: tuple[int, int, int, int]) -> list[bytes]:
    """The objects' bytes from the core and from the pure-Python version, checked equal."""
    core = _core.cdata_list(ctype, data, layout)
    py = _py_cdata_list(ctype, data, layout)
    assert [type(o) for o in core] == [type(o) for o in py] == [ctype] * len(py)
    assert [bytes(o) for o in core] == [bytes(o) for o in py]
    return [bytes(o) for o in core]


def test_scalars_are_the_exact_ctypes_type_with_their_value() -> None:
    data = struct.pack("<5I", 7, 0, 1, 2**32 - 1, 42)
    got = _core.cdata_list(ctypes.c_uint, data, (4, 4, 1, 0))
    assert [type(k) for k in got] == [ctypes.c_uint] * 5
    assert [k.value for k in got] == [7, 0, 1, 2**32 - 1, 42]
    both(ctypes.c_uint, data, (4, 4, 1, 0))


def test_structs_own_their_memory() -> None:
    data = bytearray(keys_bytes(3))
    got = _core.cdata_list(Key, bytes(data), (16, 16, 1, 0))
    assert [(k.pid, k.comm, k.slot) for k in got] == [(0, b"k0", 0), (1, b"k1", 10), (2, b"k2", 20)]
    got[0].pid = 99  # each its own copy, as from_buffer_copy's
    assert got[1].pid == 1 and ctypes.addressof(got[0]) != ctypes.addressof(got[1])
    both(Key, bytes(data), (16, 16, 1, 0))


def test_per_cpu_values_are_joined_from_their_aligned_copies() -> None:
    # a u32 per CPU, each CPU's copy 8-byte aligned in the kernel's batch buffer
    cpus = 3
    data = struct.pack("<6Q", 1, 2, 3, 4, 5, 6)
    per_cpu = ctypes.c_uint32 * cpus
    got = _core.cdata_list(per_cpu, data, (24, 4, cpus, 8))
    assert [list(v) for v in got] == [[1, 2, 3], [4, 5, 6]]
    both(per_cpu, data, (24, 4, cpus, 8))


def test_a_larger_type_is_zero_filled_and_a_smaller_one_refused() -> None:
    data = struct.pack("<2I", 5, 6)
    assert [v.value for v in _core.cdata_list(ctypes.c_uint64, data, (4, 4, 1, 0))] == [5, 6]
    both(ctypes.c_uint64, data, (4, 4, 1, 0))
    with pytest.raises(ValueError, match="c_ushort is 2 bytes, too small for entries of 4 bytes"):
        _core.cdata_list(ctypes.c_uint16, data, (4, 4, 1, 0))


def test_layouts_that_leave_the_entry_are_refused() -> None:
    for layout in [(0, 0, 1, 0), (8, 4, 3, 4), (4, 8, 1, 0), (8, 4, 0, 4)]:
        with pytest.raises(ValueError, match="do not fit"):
            _core.cdata_list(ctypes.c_uint, bytes(16), layout)


def test_a_partial_entry_at_the_end_is_left_out() -> None:
    assert len(_core.cdata_list(ctypes.c_uint, bytes(10), (4, 4, 1, 0))) == 2


def test_items_pair_keys_and_values() -> None:
    keys = keys_bytes(4)
    values = struct.pack("<4Q", 10, 11, 12, 13)
    got = _core.cdata_items(Key, keys, (16, 16, 1, 0), ctypes.c_uint64, values, (8, 8, 1, 0))
    assert [(type(k), type(v)) for k, v in got] == [(Key, ctypes.c_uint64)] * 4
    assert [(k.pid, v.value) for k, v in got] == [(0, 10), (1, 11), (2, 12), (3, 13)]
    py = _py_cdata_items(Key, keys, (16, 16, 1, 0), ctypes.c_uint64, values, (8, 8, 1, 0))
    assert [(bytes(k), bytes(v)) for k, v in got] == [(bytes(k), bytes(v)) for k, v in py]
    with pytest.raises(ValueError, match="4 keys but 3 values"):
        _core.cdata_items(Key, keys, (16, 16, 1, 0), ctypes.c_uint64, values[:24], (8, 8, 1, 0))


def test_the_collector_is_paused_only_while_the_objects_are_made() -> None:
    assert gc.isenabled()
    _core.cdata_list(ctypes.c_uint, bytes(4000), (4, 4, 1, 0))
    assert gc.isenabled()
    gc.disable()
    try:
        _core.cdata_list(ctypes.c_uint, bytes(4000), (4, 4, 1, 0))
        assert not gc.isenabled()  # a caller's own pause is left as it was
    finally:
        gc.enable()
    # the objects are tracked as any ctypes object is, so a cycle through one is still collected
    (obj,) = _core.cdata_list(Key, bytes(16), (16, 16, 1, 0))
    assert gc.is_tracked(obj)
