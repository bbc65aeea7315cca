"""bcc's text forms of keys and values (rbcc._tables.text: key_sprintf / leaf_sprintf and their scanf
inverses), for ctypes types and through the tables."""

from __future__ import annotations

import ctypes

import pytest
from _fakes import (
    COMM_KEY,
    HASH,
    NCPU,
    PERCPU_ARRAY,
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


# -- text forms (bcc's key_sprintf / leaf_sprintf and their scanf inverses) --

tabletext = load("_tables.text")


class Inner(ctypes.Structure):
    _fields_ = [("x", ctypes.c_uint16), ("y", ctypes.c_int8)]


class Mixed(ctypes.Structure):
    _fields_ = [
        ("i", ctypes.c_int32),
        ("__pad_1", ctypes.c_ubyte * 4),
        ("u", ctypes.c_uint64),
        ("c", ctypes.c_char),
        ("ok", ctypes.c_bool),
        ("name", ctypes.c_char * 6),
        ("raw", ctypes.c_ubyte * 3),
        ("nums", ctypes.c_int16 * 2),
        ("inner", Inner * 2),
        ("f", ctypes.c_double),
    ]


def test_text_of_each_kind_of_field() -> None:
    m = Mixed(i=-1, u=1 << 40, c=b"A", ok=True, name=b"ab", raw=(0x61, 0, 0x62), nums=(-2, 300))
    m.inner[1].x, m.inner[1].y, m.f = 7, -128, 1.5
    text = tabletext.sprintf(Mixed, m)
    # padding is skipped; ints are hex in their own width; byte arrays are strings up to the NUL
    assert text == (b'{ 0xffffffff 0x10000000000 0x41 0x1 "ab" "a" [ 0xfffe 0x12c ] [ { 0x0 0x0 } { 0x7 0x80 } ] 1.5 }')
    back = tabletext.scanf(Mixed, text)
    expected = Mixed.from_buffer_copy(bytes(m))
    expected.raw[2] = 0  # a string ends at its NUL: what followed it is not in the text
    assert bytes(back) == bytes(expected)
    assert (back.i, back.c, back.name, back.inner[1].y, back.f) == (-1, b"A", b"ab", -128, 1.5)


def test_scanf_reads_numbers_as_cs_percent_i() -> None:
    # decimal, hex, octal (leading 0) and signs; any whitespace between items, none needed
    back = tabletext.scanf(Inner * 2, "[{10 -1}{ 0x1F\n 017 }]")
    assert [(e.x, e.y) for e in back] == [(10, -1), (31, 15)]
    # out-of-range numbers wrap to the field's width, as scanf's %hhi does
    assert tabletext.scanf(ctypes.c_uint8, "0x1ff").value == 0xFF
    assert tabletext.scanf(ctypes.c_int64, b"-5").value == -5


class Bits(ctypes.Structure):
    _fields_ = [
        ("a", ctypes.c_uint32, 3),
        ("b", ctypes.c_uint32, 5),
        ("__pad_bits_2", ctypes.c_uint32, 24),
        ("c", ctypes.c_uint32),
    ]


def test_bitfields_sharing_a_unit_are_one_number() -> None:
    value = Bits(a=5, b=3, c=9)
    assert tabletext.sprintf(Bits, value) == b"{ 0x1d 0x9 }"  # 5 | 3 << 3
    back = tabletext.scanf(Bits, b"{ 0x1d 0x9 }")
    assert (back.a, back.b, back.c) == (5, 3, 9)


class Either(ctypes.Union):
    _fields_ = [("small", ctypes.c_uint8), ("big", ctypes.c_uint32 * 2), ("__pad_0", ctypes.c_ubyte * 8)]


def test_a_union_prints_its_largest_member() -> None:
    u = Either(big=(1, 2))
    assert tabletext.sprintf(Either, u) == b"{ [ 0x1 0x2 ] }"
    assert list(tabletext.scanf(Either, "{ [ 3 4 ] }").big) == [3, 4]


def test_scanf_errors_say_where() -> None:
    with pytest.raises(tabletext.ScanfError, match=r"expected '\{' at offset 0"):
        tabletext.scanf(Inner, "[ 1 2 ]")
    with pytest.raises(errors.BPFError, match="expected a number at offset 4"):
        tabletext.scanf(Inner, "{ 1 } ")
    with pytest.raises(ValueError, match="closing"):
        tabletext.scanf(ctypes.c_char * 4, '"abc')
    with pytest.raises(tabletext.ScanfError, match="longer than its 4-byte field"):
        tabletext.scanf(ctypes.c_char * 4, '"abcde"')


def test_table_text_methods_take_str_or_bytes_and_return_bytes() -> None:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_size=16, key_desc=COMM_KEY, value_desc=U64), "m")
    key = t.key_scanf('{ "bash" 0x3 }')
    assert (key.comm, key.slot) == (b"bash", 3)
    assert t.key_sprintf(key) == b'{ "bash" 0x3 }'
    assert t.leaf_sprintf(7) == b"0x7"
    assert t.leaf_scanf(b"0x7").value == 7
    percpu = table.table_for(FakeBPF(), FakeMap(PERCPU_ARRAY, value_desc=U32), "p")
    assert percpu.leaf_sprintf(list(range(NCPU))) == b"[ 0x0 0x1 0x2 0x3 ]"
