"""rbcc._tables.types: BTF type descriptions become ctypes types with the exact BPF layout."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import pytest
from _pure_rbcc import load

types = load("_tables.types")


def int_desc(name: str, size: int, signed: bool = False) -> dict[str, Any]:
    return {"kind": "int", "name": name, "size": size, "signed": signed}


U8 = int_desc("u8", 1)
U16 = int_desc("u16", 2)
S16 = int_desc("s16", 2, True)
U32 = int_desc("u32", 4)
S32 = int_desc("int", 4, True)
U64 = int_desc("u64", 8)
CHAR = int_desc("char", 1, True)


def member(name: str, desc: dict[str, Any], offset: int, bits: int = 0, bit_offset: int | None = None) -> dict:
    return {
        "name": name,
        "offset": offset,
        "bits": bits,
        "bit_offset": offset * 8 if bit_offset is None else bit_offset,
        "type": desc,
    }


def bitfield(name: str, desc: dict[str, Any], bit_offset: int, bits: int) -> dict:
    return member(name, desc, bit_offset // 8, bits, bit_offset)


INNER = {
    "kind": "struct",
    "name": "inner",
    "size": 4,
    "members": [member("x", U16, 0), member("y", S16, 2)],
}

# struct outer {
#     u8 a;                 // 0   (3 bytes padding)
#     u32 b;                // 4
#     u64 c[2];             // 8
#     struct inner in;      // 24
#     u32 f1:3; int f2:5;   // bits 224..231
#     u32 f3:20;            // bits 236..255 (4 unnamed bits before it)
#     char name[4];         // 32  (4 bytes tail padding, size 40)
# };
OUTER = {
    "kind": "struct",
    "name": "outer",
    "size": 40,
    "members": [
        member("a", U8, 0),
        member("b", U32, 4),
        member("c", {"kind": "array", "elem": U64, "len": 2}, 8),
        member("in", INNER, 24),
        bitfield("f1", U32, 224, 3),
        bitfield("f2", S32, 227, 5),
        bitfield("f3", U32, 236, 20),
        member("name", {"kind": "array", "elem": CHAR, "len": 4}, 32),
    ],
}


def outer_bytes() -> bytes:
    bits = 5 | (0b10110 << 3) | (0xABCDE << 12)  # f1=5, f2=-10 (5-bit two's complement), f3=0xABCDE
    return (
        bytes([7, 0xEE, 0xEE, 0xEE])
        + struct.pack("<I", 0xDEADBEEF)
        + struct.pack("<QQ", 1, 2**63)
        + struct.pack("<Hh", 300, -2)
        + struct.pack("<I", bits)
        + b"ab\0\0"
        + bytes(4)
    )


def test_struct_size_and_offsets() -> None:
    outer = types.from_desc(OUTER)
    assert ctypes.sizeof(outer) == 40
    assert outer.__name__ == "outer"
    assert outer.a.offset == 0
    assert outer.b.offset == 4
    assert outer.c.offset == 8
    assert getattr(outer, "in").offset == 24
    assert outer.name.offset == 32
    inner = types.from_desc(INNER)
    assert ctypes.sizeof(inner) == 4
    assert inner.y.offset == 2


def test_padding_fields_are_named_pad() -> None:
    names = [field[0] for field in types.from_desc(OUTER)._fields_]
    assert names[:3] == ["a", "__pad_1", "b"]
    assert names[-1].startswith("__pad_")


def test_struct_decodes_values() -> None:
    value = types.from_desc(OUTER).from_buffer_copy(outer_bytes())
    assert value.a == 7
    assert value.b == 0xDEADBEEF
    assert list(value.c) == [1, 2**63]
    assert getattr(value, "in").x == 300
    assert getattr(value, "in").y == -2
    assert (value.f1, value.f2, value.f3) == (5, -10, 0xABCDE)
    assert value.name == b"ab"
    assert bytes(value) == outer_bytes()  # padding bytes survive the round trip


def test_bitfield_write_round_trips() -> None:
    value = types.from_desc(OUTER)()
    value.f1 = 6
    value.f2 = -1
    value.f3 = 1
    raw = struct.unpack_from("<I", bytes(value), 28)[0]
    assert raw == 6 | (0b11111 << 3) | (1 << 12)


def test_odd_sized_bitfield_storage_uses_properties() -> None:
    # struct { u32 x:24; u8 y; } -- the bitfield unit is 3 bytes, which ctypes can't express
    desc = {
        "kind": "struct",
        "name": "odd",
        "size": 4,
        "members": [bitfield("x", U32, 0, 24), member("y", U8, 3)],
    }
    odd = types.from_desc(desc)
    assert ctypes.sizeof(odd) == 4
    assert odd.y.offset == 3
    value = odd.from_buffer_copy(bytes([0x56, 0x34, 0x12, 9]))
    assert (value.x, value.y) == (0x123456, 9)
    value.x = 0xABCDEF
    assert bytes(value) == bytes([0xEF, 0xCD, 0xAB, 9])


def test_union_size_and_overlap() -> None:
    desc = {
        "kind": "union",
        "name": "u",
        "size": 8,
        "members": [member("i", U32, 0), member("b", {"kind": "array", "elem": U8, "len": 3}, 0)],
    }
    u = types.from_desc(desc)
    assert ctypes.sizeof(u) == 8
    value = u.from_buffer_copy(struct.pack("<I", 0x030201) + bytes(4))
    assert list(value.b) == [1, 2, 3]
    assert issubclass(u, ctypes.Union)


def test_anonymous_union_member_is_transparent() -> None:
    anon_union = {
        "kind": "union",
        "name": "",
        "size": 8,
        "members": [member("addr", U64, 0), member("words", {"kind": "array", "elem": U32, "len": 2}, 0)],
    }
    desc = {
        "kind": "struct",
        "name": "",
        "size": 16,
        "members": [member("pid", U32, 0), member("", anon_union, 8)],
    }
    cls = types.from_desc(desc)
    assert cls.__name__.startswith("anon_struct_")
    assert ctypes.sizeof(cls) == 16
    value = cls.from_buffer_copy(struct.pack("<I4xQ", 42, 0x1122334455667788))
    assert value.pid == 42
    assert value.addr == 0x1122334455667788
    assert list(value.words) == [0x55667788, 0x11223344]


@pytest.mark.parametrize(
    ("desc", "expected"),
    [
        (int_desc("char", 1, True), ctypes.c_char),
        (int_desc("unsigned char", 1), ctypes.c_uint8),
        (int_desc("signed char", 1, True), ctypes.c_int8),
        (int_desc("_Bool", 1), ctypes.c_bool),
        (int_desc("short", 2, True), ctypes.c_int16),
        (int_desc("u32", 4), ctypes.c_uint32),
        (int_desc("long", 8, True), ctypes.c_int64),
        (int_desc("u64", 8), ctypes.c_uint64),
        ({"kind": "enum", "name": "state", "size": 4, "signed": False}, ctypes.c_uint32),
        ({"kind": "float", "name": "double", "size": 8}, ctypes.c_double),
        ({"kind": "float", "name": "float", "size": 4}, ctypes.c_float),
        ({"kind": "ptr", "size": 8}, ctypes.c_ulonglong),
    ],
)
def test_scalar_types(desc: dict[str, Any], expected: Any) -> None:
    assert types.from_desc(desc) is expected


def test_int128_is_two_u64_words() -> None:
    t = types.from_desc(int_desc("unsigned __int128", 16))
    assert ctypes.sizeof(t) == 16
    assert issubclass(t, ctypes.Array) and t._type_ is ctypes.c_uint64 and t._length_ == 2


def test_char_array_reads_as_bytes() -> None:
    comm = types.from_desc({"kind": "array", "elem": CHAR, "len": 16})
    assert comm.from_buffer_copy(b"bash" + bytes(12)).value == b"bash"


def test_multidimensional_array() -> None:
    t = types.from_desc({"kind": "array", "elem": {"kind": "array", "elem": U16, "len": 3}, "len": 2})
    assert ctypes.sizeof(t) == 12
    assert t.from_buffer_copy(struct.pack("<6H", 0, 1, 2, 3, 4, 5))[1][2] == 5


def test_cache_by_identity() -> None:
    assert types.from_desc(OUTER) is types.from_desc(OUTER)
    copy = {**INNER, "members": list(INNER["members"])}
    assert types.from_desc(copy) is not types.from_desc(INNER)


def test_size_mismatch_is_reported() -> None:
    with pytest.raises(ValueError):
        types.from_desc({"kind": "struct", "name": "bad", "size": 2, "members": [member("a", U32, 0)]})


def test_overlapping_members_are_reported() -> None:
    with pytest.raises(ValueError):
        types.from_desc(
            {"kind": "struct", "name": "bad", "size": 8, "members": [member("a", U64, 0), member("b", U32, 4)]}
        )


@pytest.mark.parametrize(
    ("size", "expected"),
    [(1, ctypes.c_uint8), (2, ctypes.c_uint16), (4, ctypes.c_uint32), (8, ctypes.c_uint64)],
)
def test_from_size_scalars(size: int, expected: Any) -> None:
    assert types.from_size(size) is expected


@pytest.mark.parametrize("size", [0, 3, 16, 1016])
def test_from_size_bytes(size: int) -> None:
    t = types.from_size(size)
    assert ctypes.sizeof(t) == size
    assert issubclass(t, ctypes.Array) and t._type_ is ctypes.c_ubyte
