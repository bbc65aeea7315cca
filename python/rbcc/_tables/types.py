"""ctypes types built from the BTF type descriptions the Rust core hands out.

A TypeDesc (see ``rbcc/_core.pyi``) is plain data; this module turns it into a
ctypes type whose ``sizeof`` and field offsets match the BPF side byte for byte,
so map keys and values round-trip through ``bytes(obj)`` and
``Type.from_buffer_copy(raw)``. The choices follow what bcc scripts expect:
``char`` arrays read as ``bytes``, pointers are plain 64-bit integers, and
128-bit integers are pairs of 64-bit words.
"""

from __future__ import annotations

import ctypes
import itertools
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["from_desc", "from_size"]

TypeDesc = dict[str, Any]
CType = Any  # a ctypes type (class); ctypes has no usable common static type for them
FieldSpec = tuple[Any, ...]

# A desc is cached by id(); the desc itself is kept in the value so its id can't be reused.
_cache: dict[int, tuple[TypeDesc, CType]] = {}
_anon_ids = itertools.count(1)

_UNSIGNED: dict[int, CType] = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}
_SIGNED: dict[int, CType] = {1: ctypes.c_int8, 2: ctypes.c_int16, 4: ctypes.c_int32, 8: ctypes.c_int64}
_FLOATS: dict[int, CType] = {4: ctypes.c_float, 8: ctypes.c_double}
if ctypes.sizeof(ctypes.c_longdouble) == 16:
    _FLOATS[16] = ctypes.c_longdouble

_BOOL_NAMES = frozenset({"_Bool", "bool"})


def from_size(size: int) -> CType:
    """A raw type for a map without BTF: an unsigned int when the size is one, else a byte array."""
    return _UNSIGNED.get(size) or ctypes.c_ubyte * size


def from_desc(desc: TypeDesc) -> CType:
    """The ctypes type for ``desc``; building the same desc object twice returns the same class."""
    hit = _cache.get(id(desc))
    if hit is not None and hit[0] is desc:
        return hit[1]
    built = _build(desc)
    _cache[id(desc)] = (desc, built)
    return built


def _build(desc: TypeDesc) -> CType:
    kind = desc["kind"]
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ValueError(f"unknown BTF type kind {kind!r} in {desc!r}")
    return builder(desc)


def _int_type(desc: TypeDesc) -> CType:
    size = int(desc["size"])
    name = desc.get("name", "")
    # bcc maps plain "char" to c_char so char arrays read as bytes; signed/unsigned char stay numeric.
    if name == "char" and size == 1:
        return ctypes.c_char
    if name in _BOOL_NAMES and size == 1:
        return ctypes.c_bool
    return _integer(size, bool(desc.get("signed", False)))


def _integer(size: int, signed: bool) -> CType:
    table = _SIGNED if signed else _UNSIGNED
    if size in table:
        return table[size]
    if size == 16:
        # As bcc: a 128-bit integer is two 64-bit words, low word first.
        return (ctypes.c_int64 if signed else ctypes.c_uint64) * 2
    return ctypes.c_ubyte * size


def _float_type(desc: TypeDesc) -> CType:
    size = int(desc["size"])
    return _FLOATS.get(size) or ctypes.c_ubyte * size


def _ptr_type(desc: TypeDesc) -> CType:
    # A BPF-side pointer is a kernel or user address, meaningless to dereference here.
    return ctypes.c_ulonglong


def _void_type(desc: TypeDesc) -> CType:
    return ctypes.c_ubyte * int(desc.get("size", 0))


def _array_type(desc: TypeDesc) -> CType:
    return from_desc(desc["elem"]) * int(desc["len"])


def _record_type(desc: TypeDesc) -> CType:
    is_union = desc["kind"] == "union"
    name = desc.get("name") or f"anon_{desc['kind']}_{next(_anon_ids)}"
    layout = _UnionLayout(desc) if is_union else _StructLayout(desc)
    namespace: dict[str, Any] = {
        "_pack_": 1,
        # Python 3.14 wants the layout spelled out when _pack_ is set; older versions ignore it.
        "_layout_": "ms",
        "_anonymous_": layout.anonymous,
        "_fields_": layout.fields,
        **layout.properties,
    }
    base = ctypes.Union if is_union else ctypes.Structure
    cls = type(name, (base,), namespace)
    if ctypes.sizeof(cls) != int(desc["size"]):
        raise ValueError(f"{name}: built {ctypes.sizeof(cls)} bytes, BTF says {desc['size']}")
    return cls


class _Layout:
    """Fields of one struct or union, in ctypes form."""

    def __init__(self, desc: TypeDesc) -> None:
        self.desc = desc
        self.size = int(desc["size"])
        self.fields: list[FieldSpec] = []
        self.anonymous: list[str] = []
        self.properties: dict[str, property] = {}

    def member_name(self, member: dict[str, Any], index: int) -> str:
        name = member.get("name") or ""
        if name:
            return name
        name = f"__anon_{index}"
        if member["type"]["kind"] in ("struct", "union"):
            # An anonymous struct/union member stays transparent, as in C: its fields read from the parent.
            self.anonymous.append(name)
        return name


class _UnionLayout(_Layout):
    def __init__(self, desc: TypeDesc) -> None:
        super().__init__(desc)
        for index, member in enumerate(desc["members"]):
            name = self.member_name(member, index)
            ctype = from_desc(member["type"])
            bits = int(member.get("bits", 0))
            if bits:
                self.fields.append((name, _bitfield_unit(member, ctypes.sizeof(ctype)), bits))
            else:
                self.fields.append((name, ctype))
        # The largest member may be smaller than the union (alignment); a byte array restores the size.
        self.fields.append(("__pad_0", ctypes.c_ubyte * self.size))


class _StructLayout(_Layout):
    def __init__(self, desc: TypeDesc) -> None:
        super().__init__(desc)
        self.pos = 0  # next free byte
        members = list(enumerate(desc["members"]))
        members.sort(key=lambda im: _bit_position(im[1]))
        i = 0
        while i < len(members):
            index, member = members[i]
            if int(member.get("bits", 0)):
                run_end = i
                while run_end < len(members) and int(members[run_end][1].get("bits", 0)):
                    run_end += 1
                self.add_bitfield_run(members[i:run_end])
                i = run_end
            else:
                self.add_member(index, member)
                i += 1
        self.pad_to(self.size, f"__pad_{len(members)}")

    def pad_to(self, offset: int, name: str) -> None:
        if offset < self.pos:
            raise ValueError(f"{self.desc.get('name') or 'anonymous struct'}: member at byte {offset} overlaps")
        if offset > self.pos:
            self.fields.append((name, ctypes.c_ubyte * (offset - self.pos)))
            self.pos = offset

    def add_member(self, index: int, member: dict[str, Any]) -> None:
        offset = int(member["offset"])
        self.pad_to(offset, f"__pad_{index}")
        ctype = from_desc(member["type"])
        self.fields.append((self.member_name(member, index), ctype))
        self.pos = offset + ctypes.sizeof(ctype)

    def add_bitfield_run(self, run: Sequence[tuple[int, dict[str, Any]]]) -> None:
        for region in _split_regions(run):
            first_index = region[0][0]
            start = int(region[0][1]["bit_offset"]) // 8
            end = _bytes_for_bits(max(int(m["bit_offset"]) + int(m["bits"]) for _, m in region))
            self.pad_to(start, f"__pad_{first_index}")
            if end - start in _UNSIGNED:
                self.add_bitfield_unit(region, start, end - start)
            else:
                self.add_bitfield_bytes(region, start, end - start)
            self.pos = end

    def add_bitfield_unit(self, region: Sequence[tuple[int, dict[str, Any]]], start: int, size: int) -> None:
        """A storage unit of 1/2/4/8 bytes: real ctypes bitfields, with unnamed gaps made explicit."""
        cursor = start * 8
        for index, member in region:
            bit_offset = int(member["bit_offset"])
            if bit_offset > cursor:
                self.fields.append((f"__pad_bits_{index}", _UNSIGNED[size], bit_offset - cursor))
            name = member.get("name") or f"__anon_{index}"
            self.fields.append((name, _bitfield_unit(member, size), int(member["bits"])))
            cursor = bit_offset + int(member["bits"])

    def add_bitfield_bytes(self, region: Sequence[tuple[int, dict[str, Any]]], start: int, size: int) -> None:
        """An odd-sized storage unit (3, 5, ... bytes) ctypes can't express: bytes plus properties."""
        storage = f"__bitfield_{region[0][0]}"
        self.fields.append((storage, ctypes.c_ubyte * size))
        for index, member in region:
            name = member.get("name") or f"__anon_{index}"
            rel = int(member["bit_offset"]) - start * 8
            self.properties[name] = _bit_property(storage, rel, int(member["bits"]), _is_signed(member))


def _bit_position(member: dict[str, Any]) -> int:
    return int(member["bit_offset"]) if int(member.get("bits", 0)) else int(member["offset"]) * 8


def _split_regions(run: Sequence[tuple[int, dict[str, Any]]]) -> list[list[tuple[int, dict[str, Any]]]]:
    """Cut a run of adjacent bitfields into byte ranges of at most 8 bytes that share no byte.

    When a cut would land inside a byte the whole run stays one region (stored as bytes).
    """
    regions: list[list[tuple[int, dict[str, Any]]]] = []
    current: list[tuple[int, dict[str, Any]]] = []
    start = end = 0
    for item in run:
        lo = int(item[1]["bit_offset"])
        hi = _bytes_for_bits(lo + int(item[1]["bits"]))
        if current and hi - start > 8:
            if lo // 8 < end:
                return [list(run)]
            regions.append(current)
            current = []
        if not current:
            start, end = lo // 8, hi
        current.append(item)
        end = max(end, hi)
    if current:
        regions.append(current)
    return regions


def _bytes_for_bits(bits: int) -> int:
    return -(-bits // 8)


def _is_signed(member: dict[str, Any]) -> bool:
    return bool(member["type"].get("signed", False))


def _bitfield_unit(member: dict[str, Any], size: int) -> CType:
    return (_SIGNED if _is_signed(member) else _UNSIGNED)[size]


def _bit_property(storage: str, rel: int, bits: int, signed: bool) -> property:
    mask = (1 << bits) - 1

    def read(self: Any) -> int:
        raw = int.from_bytes(bytes(getattr(self, storage)), "little")
        value = (raw >> rel) & mask
        if signed and value >> (bits - 1):
            value -= 1 << bits
        return value

    def write(self: Any, value: int) -> None:
        array = getattr(self, storage)
        raw = int.from_bytes(bytes(array), "little")
        raw = (raw & ~(mask << rel)) | ((int(value) & mask) << rel)
        ctypes.memmove(ctypes.addressof(array), raw.to_bytes(len(array), "little"), len(array))

    return property(read, write)


_BUILDERS: dict[str, Callable[[TypeDesc], CType]] = {
    "int": _int_type,
    "enum": _int_type,
    "float": _float_type,
    "ptr": _ptr_type,
    "void": _void_type,
    "array": _array_type,
    "struct": _record_type,
    "union": _record_type,
}
