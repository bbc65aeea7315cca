"""bcc's text form of map keys and values (``key_sprintf``/``leaf_sprintf`` and their ``scanf`` inverses).

bcc prints a value by walking its LLVM type: an integer is ``0x`` and hex digits of
its own width (two's complement, so a signed -1 in 32 bits is ``0xffffffff``), a
struct is ``{ a b }``, an array is ``[ a b ]``, and an array of bytes is a quoted
C string (``"comm"``, up to its first NUL). Between items there is exactly one
space; the reader accepts any whitespace, and numbers as C's ``%i`` does
(``0x1f``, ``017`` octal, ``-3``).

Here the walk is over the ctypes type instead, giving the same text for what the
two types share: padding that rbcc spells out as ``__pad_*`` members is skipped
(LLVM leaves it implicit), and bitfields sharing a storage unit print as one
integer, that unit, as LLVM merges them (clang may cut an unusual run of
bitfields into units differently). Where bcc has no usable output, rbcc picks
one that reads back: a union prints its largest member inside ``{ }``, a float
prints as a Python float literal, and a pointer as its address in hex.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

from ..errors import BPFError

__all__ = ["ScanfError", "scanf", "sprintf"]

CType = Any

_BYTE_ELEMS = (ctypes.c_char, ctypes.c_byte, ctypes.c_ubyte, ctypes.c_bool)
_FLOATS = (ctypes.c_float, ctypes.c_double, ctypes.c_longdouble)
_SimpleCData: Any = ctypes._SimpleCData
_NUMBER = re.compile(rb"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_FLOAT = re.compile(rb"[+-]?(?:inf|nan|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)", re.IGNORECASE)


class ScanfError(BPFError, ValueError):
    """Text that does not read back as the table's key or value type."""


def sprintf(ctype: CType, value: Any) -> bytes:
    """``value`` (an instance of ``ctype``) in bcc's text form."""
    out: list[bytes] = []
    _write(ctype, bytes(value), 0, out)
    return b"".join(out)


def scanf(ctype: CType, text: str | bytes) -> Any:
    """The ``ctype`` instance that ``text`` (bcc's text form) describes; fields it doesn't name stay zero."""
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    buf = bytearray(ctypes.sizeof(ctype))
    reader = _Reader(raw)
    _read(ctype, buf, 0, reader)
    reader.end()
    return ctype.from_buffer_copy(bytes(buf))


# -- the shape of a type: (kind, ctype, offset) items, shared by the writer and the reader --


def _members(ctype: CType) -> list[tuple[str, CType, int, int]]:
    """The printed members of a struct: (kind, type, offset, size), kind "field" or "unit" (bitfields)."""
    items: list[tuple[str, CType, int, int]] = []
    last_unit: int | None = None
    for field in ctype._fields_:
        name, ftype = field[0], field[1]
        descr = getattr(ctype, name)
        if len(field) == 3:
            if name.startswith("__pad_bits_") or descr.offset == last_unit:
                continue
            # Bitfields sharing a storage unit print as that unit, one integer.
            last_unit = descr.offset
            items.append(("unit", ftype, descr.offset, ctypes.sizeof(ftype)))
            continue
        last_unit = None
        if name.startswith("__pad_"):
            continue
        if name.startswith("__bitfield_"):
            items.append(("unit", ftype, descr.offset, ctypes.sizeof(ftype)))
            continue
        items.append(("field", ftype, descr.offset, ctypes.sizeof(ftype)))
    return items


def _union_member(ctype: CType) -> tuple[CType, int] | None:
    best: tuple[CType, int] | None = None
    for field in ctype._fields_:
        if field[0].startswith("__pad_") or len(field) == 3:
            continue
        size = ctypes.sizeof(field[1])
        if best is None or size > ctypes.sizeof(best[0]):
            best = (field[1], getattr(ctype, field[0]).offset)
    return best


def _is_string(ctype: CType) -> bool:
    return issubclass(ctype, ctypes.Array) and ctype._type_ in _BYTE_ELEMS


def _is_struct(ctype: CType) -> bool:
    return issubclass(ctype, ctypes.Structure)


def _is_union(ctype: CType) -> bool:
    return issubclass(ctype, ctypes.Union)


def _is_float(ctype: CType) -> bool:
    return issubclass(ctype, _FLOATS)


# -- writing --


def _write(ctype: CType, raw: bytes, offset: int, out: list[bytes]) -> None:
    size = ctypes.sizeof(ctype)
    if _is_struct(ctype):
        out.append(b"{ ")
        for kind, ftype, foff, fsize in _members(ctype):
            if kind == "unit":
                out.append(_hex(raw[offset + foff : offset + foff + fsize]))
            else:
                _write(ftype, raw, offset + foff, out)
            out.append(b" ")
        out.append(b"}")
    elif _is_union(ctype):
        out.append(b"{ ")
        member = _union_member(ctype)
        if member is not None:
            _write(member[0], raw, offset + member[1], out)
            out.append(b" ")
        out.append(b"}")
    elif _is_string(ctype):
        text = raw[offset : offset + size].split(b"\0", 1)[0]
        out.append(b'"' + text + b'"')
    elif issubclass(ctype, ctypes.Array):
        elem = ctype._type_
        step = ctypes.sizeof(elem)
        out.append(b"[ ")
        for i in range(ctype._length_):
            _write(elem, raw, offset + i * step, out)
            out.append(b" ")
        out.append(b"]")
    elif _is_float(ctype):
        out.append(repr(ctype.from_buffer_copy(raw, offset).value).encode())
    else:
        out.append(_hex(raw[offset : offset + size]))


def _hex(raw: bytes) -> bytes:
    return b"0x%x" % int.from_bytes(raw, "little")


# -- reading --


class _Reader:
    def __init__(self, text: bytes) -> None:
        self.text = text
        self.pos = 0

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos : self.pos + 1].isspace():
            self.pos += 1

    def fail(self, wanted: str) -> ScanfError:
        got = self.text[self.pos : self.pos + 20].decode("utf-8", "replace") or "the end of the text"
        return ScanfError(f"expected {wanted} at offset {self.pos} of {self.text!r}, found {got!r}")

    def literal(self, char: bytes) -> None:
        self._skip()
        if self.text[self.pos : self.pos + 1] != char:
            raise self.fail(repr(char.decode()))
        self.pos += 1

    def number(self) -> int:
        self._skip()
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            raise self.fail("a number")
        self.pos = m.end()
        token = m.group().decode()
        sign, digits = (-1, token[1:]) if token[0] == "-" else (1, token.lstrip("+"))
        if digits[:2].lower() == "0x":
            return sign * int(digits[2:], 16)
        if len(digits) > 1 and digits[0] == "0":
            return sign * int(digits[1:], 8)
        return sign * int(digits)

    def real(self) -> float:
        self._skip()
        m = _FLOAT.match(self.text, self.pos)
        if m is None:
            raise self.fail("a number")
        self.pos = m.end()
        return float(m.group())

    def string(self) -> bytes:
        self.literal(b'"')
        end = self.text.find(b'"', self.pos)
        if end < 0:
            raise self.fail("a closing '\"'")
        value = self.text[self.pos : end]
        self.pos = end + 1
        return value

    def end(self) -> None:
        self._skip()
        if self.pos != len(self.text):
            raise self.fail("the end of the text")


def _read(ctype: CType, buf: bytearray, offset: int, reader: _Reader) -> None:
    size = ctypes.sizeof(ctype)
    if _is_struct(ctype):
        reader.literal(b"{")
        for kind, ftype, foff, fsize in _members(ctype):
            if kind == "unit":
                _put_int(buf, offset + foff, fsize, reader.number())
            else:
                _read(ftype, buf, offset + foff, reader)
        reader.literal(b"}")
    elif _is_union(ctype):
        reader.literal(b"{")
        member = _union_member(ctype)
        if member is not None:
            _read(member[0], buf, offset + member[1], reader)
        reader.literal(b"}")
    elif _is_string(ctype):
        text = reader.string()
        if len(text) > size:
            raise ScanfError(f"string {text!r} is longer than its {size}-byte field")
        buf[offset : offset + len(text)] = text
    elif issubclass(ctype, ctypes.Array):
        elem = ctype._type_
        step = ctypes.sizeof(elem)
        reader.literal(b"[")
        for i in range(ctype._length_):
            _read(elem, buf, offset + i * step, reader)
        reader.literal(b"]")
    elif _is_float(ctype):
        buf[offset : offset + size] = bytes(ctype(reader.real()))
    else:
        _put_int(buf, offset, size, reader.number())


def _put_int(buf: bytearray, offset: int, size: int, value: int) -> None:
    # As scanf's %hhi/%hi/%i/%li: the number lands in the field's width, two's complement.
    buf[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
