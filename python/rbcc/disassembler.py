"""BPF instructions and map layouts as text, under bcc's names (``bcc.disassembler``):
``disassemble_str``/``disassemble_prog`` turn raw instructions (8 bytes each, as ``BPF.dump_func``
returns them) into bcc's lines, ``"%4d: (%02x) %s"``; ``decode_map`` prints a table's key and value
layout. ``BPF.disassemble_func`` and ``BPF.decode_table`` use them.

Where bcc's decoder knew an opcode, its line is bcc's; the rest of the instruction set (32-bit jumps,
atomics, sign-extending loads and moves, signed division, byte swaps) is decoded too, in the notation of
the kernel's verifier log. Helper calls are named from the running kernel's ``enum bpf_func_id`` (its
BTF), so every helper it has is named, not only those bcc listed.
"""

from __future__ import annotations

import ctypes as ct
from os import linesep
from typing import Any

from .table import get_table_type_name

__all__ = [
    "BPFDecoder",
    "BPFInstr",
    "BPFInstrFields",
    "ImmUnion",
    "MapDecoder",
    "OffsetUnion",
    "decode_map",
    "disassemble_instruction",
    "disassemble_prog",
    "disassemble_str",
]


class OffsetUnion(ct.Union):
    _fields_ = [("offsetu", ct.c_uint16), ("offset", ct.c_int16)]


class ImmUnion(ct.Union):
    _fields_ = [("immu", ct.c_uint32), ("imm", ct.c_int32)]


class BPFInstrFields(ct.Structure):
    """``struct bpf_insn``: opcode, the two 4-bit registers, the 16-bit offset and the 32-bit immediate."""

    _pack_ = 1
    _anonymous_ = ("o", "i")
    _fields_ = [
        ("opcode", ct.c_uint8),
        ("dst", ct.c_uint8, 4),
        ("src", ct.c_uint8, 4),
        ("o", OffsetUnion),
        ("i", ImmUnion),
    ]


class BPFInstr(ct.Union):
    _pack_ = 1
    _anonymous_ = ("s",)
    _fields_ = [("s", BPFInstrFields), ("instr", ct.c_uint64)]


# -- the instruction set, from its encoding (the kernel's Documentation/bpf/standardization) ----------

_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_X = 0x08  # the operand is src_reg, not the immediate
_SIZES = {0x00: ("w", 32), 0x08: ("h", 16), 0x10: ("b", 8), 0x18: ("dw", 64)}
_MEM, _MEMSX, _ATOMIC, _ABS, _IND = 0x60, 0x80, 0xC0, 0x20, 0x40

# ALU operations: (name, operator); bcc prints and/or/xor immediates in hex
_ALU_OPS = {
    0x00: ("add", "+="),
    0x10: ("sub", "-="),
    0x20: ("mul", "*="),
    0x30: ("div", "/="),
    0x40: ("or", "|="),
    0x50: ("and", "&="),
    0x60: ("lsh", "<<="),
    0x70: ("rsh", ">>="),
    0x90: ("mod", "%="),
    0xA0: ("xor", "^="),
    0xB0: ("mov", "="),
    0xC0: ("arsh", "s>>="),
}
_BITWISE = {"or", "and", "xor"}
_JMP_OPS = {
    0x10: ("jeq", "=="),
    0x20: ("jgt", ">"),
    0x30: ("jge", ">="),
    0x40: ("jset", "&"),
    0x50: ("jne", "!="),
    0x60: ("jsgt", "s>"),
    0x70: ("jsge", "s>="),
    0xA0: ("jlt", "<"),
    0xB0: ("jle", "<="),
    0xC0: ("jslt", "s<"),
    0xD0: ("jsle", "s<="),
}
_ATOMIC_OPS = {0x00: ("add", "+="), 0x40: ("or", "|="), 0x50: ("and", "&="), 0xA0: ("xor", "^=")}
_ATOMIC_FETCH, _ATOMIC_XCHG, _ATOMIC_CMPXCHG = 0x01, 0xE1, 0xF1

# lddw's src_reg says what its 64-bit immediate stands for (BPF_PSEUDO_* of linux/bpf.h)
_PSEUDO_MAP_FD, _PSEUDO_MAP_VALUE, _PSEUDO_BTF_ID = 1, 2, 3
_PSEUDO_FUNC, _PSEUDO_MAP_IDX, _PSEUDO_MAP_IDX_VALUE = 4, 5, 6
_PSEUDO_CALL, _PSEUDO_KFUNC_CALL = 1, 2


def _opcode_table() -> dict[int, tuple[str, str, str | None, int]]:
    """opcode -> (mnemonic, operand form, operator, bits), bcc's ``BPFDecoder.opcodes``, for the whole
    instruction set."""
    table: dict[int, tuple[str, str, str | None, int]] = {}
    for cls, bits, suffix in ((_ALU, 32, "32"), (_ALU64, 64, "")):
        for op, (name, operator) in _ALU_OPS.items():
            table[cls | op] = (name + suffix, "dstimm_bw" if name in _BITWISE else "dstimm", operator, bits)
            table[cls | op | _X] = (name + suffix, "dstsrc", operator, bits)
        table[cls | 0x80] = ("neg" + suffix, "dst", "~", bits)
    table[_ALU | 0xD0] = ("le", "endian", "le", 32)
    table[_ALU | 0xD0 | _X] = ("be", "endian", "be", 32)
    table[_ALU64 | 0xD0] = ("bswap", "endian", "bswap", 64)
    for cls, bits, suffix in ((_JMP, 64, ""), (_JMP32, 32, "32")):
        for op, (name, operator) in _JMP_OPS.items():
            table[cls | op] = (name + suffix, "jdstimmoff", operator, bits)
            table[cls | op | _X] = (name + suffix, "jdstsrcoff", operator, bits)
    table[_JMP | 0x00] = ("ja", "joff", None, 64)
    table[_JMP32 | 0x00] = ("gotol", "jimm", None, 64)
    table[_JMP | 0x80] = ("call", "call", None, 64)
    table[_JMP | 0x90] = ("exit", "exit", None, 64)
    table[_LD | 0x18] = ("lddw", "lddw", None, 64)
    for size, (letter, bits) in _SIZES.items():
        table[_LD | _ABS | size] = ("ldabs" + letter, "ldabs", None, bits)
        table[_LD | _IND | size] = ("ldind" + letter, "ldind", None, bits)
        table[_LDX | _MEM | size] = ("ldx" + letter, "ldstsrcoff", None, bits)
        table[_ST | _MEM | size] = ("st" + letter, "sdstoffimm", None, bits)
        table[_STX | _MEM | size] = ("stx" + letter, "sdstoffsrc", None, bits)
        if bits < 64:
            table[_LDX | _MEMSX | size] = ("ldxs" + letter, "ldsx", None, bits)
        if bits >= 32:
            table[_STX | _ATOMIC | size] = ("atomic" + ("" if bits == 32 else "64"), "atomic", None, bits)
    return table


def _helper_names() -> list[str]:
    """Helper names by number (bcc's ``bpf_helpers``, without ``bpf_``), from the running kernel's BTF."""
    try:
        from . import _core

        enum = _core.kernel_enum("bpf_func_id")
    except Exception:  # noqa: BLE001 - no BTF, or no core: calls then print their numbers
        enum = []
    names = ["unspec"]
    for name, value in enum:
        if value >= len(names):
            names.extend(f"helper{i}" for i in range(len(names), value + 1))
        names[value] = name.removeprefix("BPF_FUNC_")
    return names


def _signed_off(value: int) -> str:
    return "%+d" % value  # noqa: UP031 - bcc's format, sign always shown


class BPFDecoder:
    """bcc's decoder: ``decode(i, w, w1)`` is ``(text, instructions to skip)`` for instruction ``w`` at
    index ``i``, ``w1`` the one after it (lddw's second half)."""

    BPF_PSEUDO_CALL = _PSEUDO_CALL
    bpf_helpers: list[str] = _helper_names()
    opcodes: dict[int, tuple[str, str, str | None, int]] = _opcode_table()

    @classmethod
    def _call(cls, w: Any) -> str:
        if w.src == _PSEUDO_CALL:
            return f"call {_signed_off(w.imm)}"
        if w.src == _PSEUDO_KFUNC_CALL:
            return f"call <kfunc btf id #{w.immu}>"
        if 0 < w.immu < len(cls.bpf_helpers):
            return f"call bpf_{cls.bpf_helpers[w.immu]}#{w.immu}"
        return f"call <unknown helper #{w.immu}>"

    @staticmethod
    def _lddw(w: Any, w1: Any, maps: dict[int, str] | None) -> str:
        named = f" ({maps[w.imm]})" if maps and w.imm in maps else ""
        if w.src == _PSEUDO_MAP_FD:
            return f"r{w.dst} = <map at fd #{w.imm}>{named}"
        if w.src == _PSEUDO_MAP_VALUE:
            return f"r{w.dst} = <map value at fd #{w.imm} + {w1.immu}>{named}"
        if w.src in (_PSEUDO_MAP_IDX, _PSEUDO_MAP_IDX_VALUE):
            return f"r{w.dst} = <map #{w.imm} of the program>"
        if w.src == _PSEUDO_BTF_ID:
            return f"r{w.dst} = <kernel object of btf id #{w.immu}>"
        if w.src == _PSEUDO_FUNC:
            return f"r{w.dst} = <function at pc{_signed_off(w.imm)}>"
        return f"r{w.dst} = 0x{(w1.immu << 32) | w.immu:x}"

    @staticmethod
    def _atomic(w: Any, bits: int) -> str:
        where = f"(u{bits}*)(r{w.dst} {_signed_off(w.offset)})"
        wide = "64" if bits == 64 else ""
        if w.immu == _ATOMIC_XCHG:
            return f"r{w.src} = atomic{wide}_xchg({where}, r{w.src})"
        if w.immu == _ATOMIC_CMPXCHG:
            return f"r0 = atomic{wide}_cmpxchg({where}, r0, r{w.src})"
        found = _ATOMIC_OPS.get(w.immu & ~_ATOMIC_FETCH)
        if found is None:
            return f"atomic <unknown operation 0x{w.immu:x}>"
        name, operator = found
        if w.immu & _ATOMIC_FETCH:
            return f"r{w.src} = atomic{wide}_fetch_{name}({where}, r{w.src})"
        return f"lock *{where} {operator} r{w.src}"

    @classmethod
    def decode(cls, i: int, w: Any, w1: Any, maps: dict[int, str] | None = None) -> tuple[str, int]:
        found = cls.opcodes.get(w.opcode)
        if found is None:
            return f"unknown <0x{w.opcode:x}>", 0
        name, form, op, bits = found
        reg = "w" if form.startswith("j") and bits == 32 else "r"
        target = i + w.offset + 1
        if form == "dstimm":
            return f"r{w.dst} {op} {w.imm}", 0
        if form == "dstimm_bw":
            return f"r{w.dst} {op} 0x{w.immu:x}", 0
        if form == "dstsrc":
            if name.startswith("mov") and w.offset in (8, 16, 32):  # movsx: the source sign-extended
                return f"r{w.dst} = (s{w.offset})r{w.src}", 0
            if name.startswith(("div", "mod")) and w.offset == 1:  # sdiv, smod
                return f"r{w.dst} s{op} r{w.src}", 0
            return f"r{w.dst} {op} r{w.src}", 0
        if form == "dst":
            return f"r{w.dst} = {op} (u{bits})r{w.dst}", 0
        if form == "endian":
            return f"r{w.dst} = {op}{w.imm} r{w.dst}", 0
        if form == "joff":
            return f"goto {_signed_off(w.offset)} <{target}>", 0
        if form == "jimm":
            return f"gotol {_signed_off(w.imm)} <{i + w.imm + 1}>", 0
        if form == "jdstimmoff":
            return f"if {reg}{w.dst} {op} {w.imm} goto pc{_signed_off(w.offset)} <{target}>", 0
        if form == "jdstsrcoff":
            return f"if {reg}{w.dst} {op} {reg}{w.src} goto pc{_signed_off(w.offset)} <{target}>", 0
        if form == "lddw":
            if w1 is None:
                return f"r{w.dst} = <lddw without its second half>", 0
            return cls._lddw(w, w1, maps), 1
        if form == "ldabs":
            return f"r0 = *(u{bits}*)skb[{w.imm}]", 0
        if form == "ldind":
            return f"r0 = *(u{bits}*)skb[r{w.src} {_signed_off(w.imm)}]", 0
        if form == "ldstsrcoff":
            return f"r{w.dst} = *(u{bits}*)(r{w.src} {_signed_off(w.offset)})", 0
        if form == "ldsx":
            return f"r{w.dst} = *(s{bits}*)(r{w.src} {_signed_off(w.offset)})", 0
        if form == "sdstoffimm":
            return f"*(u{bits}*)(r{w.dst} {_signed_off(w.offset)}) = {w.imm}", 0
        if form == "sdstoffsrc":
            return f"*(u{bits}*)(r{w.dst} {_signed_off(w.offset)}) = r{w.src}", 0
        if form == "atomic":
            return cls._atomic(w, bits), 0
        if form == "call":
            return cls._call(w), 0
        return name, 0  # exit


def disassemble_instruction(i: int, w0: Any, w1: Any = None, maps: dict[int, str] | None = None) -> tuple[str, int]:
    """Instruction ``w0`` at index ``i`` as bcc's line, and how many instructions after it it used."""
    text, skip = BPFDecoder.decode(i, w0, w1, maps)
    return "%4d: (%02x) %s" % (i, w0.opcode, text), skip  # noqa: UP031 - bcc's line


def disassemble_str(
    bpfstr: bytes, lines: dict[int, str] | None = None, maps: dict[int, str] | None = None
) -> list[str]:
    """One line per instruction of ``bpfstr`` (8 bytes each). rbcc's additions: ``lines`` maps an
    instruction index to a source line printed before it, ``maps`` a map fd to the map's name."""
    count = len(bpfstr) // 8
    insns = (BPFInstr * count).from_buffer_copy(bytes(bpfstr[: count * 8]))
    out: list[str] = []
    skip = 0
    for i in range(count):
        if skip:
            skip -= 1
            out.append("%4d:      (64-bit upper word)" % i)  # noqa: UP031 - bcc's line
            continue
        if lines and i in lines:
            out.append(lines[i])
        text, skip = disassemble_instruction(i, insns[i], insns[i + 1] if i + 1 < count else None, maps)
        out.append(text)
    return out


def disassemble_prog(
    func_name: str | bytes, bpfstr: bytes, lines: dict[int, str] | None = None, maps: dict[int, str] | None = None
) -> str:
    """bcc's disassembly of a function: a header line, then ``disassemble_str``'s lines."""
    name = func_name.decode() if isinstance(func_name, bytes) else func_name
    return linesep.join([f"Disassemble of BPF program {name}:", *disassemble_str(bpfstr, lines, maps)])


class MapDecoder:
    """bcc's text of a table's key and value types, from their ctypes."""

    ctype2str: dict[Any, str] = {
        ct.c_bool: "_Bool",
        ct.c_char: "char",
        ct.c_wchar: "wchar_t",
        ct.c_ubyte: "unsigned char",
        ct.c_byte: "signed char",
        ct.c_short: "short",
        ct.c_ushort: "unsigned short",
        ct.c_int: "int",
        ct.c_uint: "unsigned int",
        ct.c_long: "long",
        ct.c_ulong: "unsigned long",
        ct.c_longlong: "long long",
        ct.c_ulonglong: "unsigned long long",
        ct.c_float: "float",
        ct.c_double: "double",
        ct.c_longdouble: "long double",
        ct.c_int64 * 2: "__int128",
        ct.c_uint64 * 2: "unsigned __int128",
    }

    @classmethod
    def get_ct_name(cls, t: Any) -> str:
        if isinstance(t, type) and issubclass(t, ct.Structure):
            return "struct"
        if isinstance(t, type) and issubclass(t, ct.Union):
            return "union"
        if t in cls.ctype2str:
            return cls.ctype2str[t]
        if isinstance(t, type) and issubclass(t, ct.Array):
            return f"{cls.get_ct_name(t._type_)}[{t._length_}]"
        return str(t)

    @classmethod
    def format_size_info(cls, offset: int, size: int, enabled: bool = False, bitoffset: int | None = None) -> str:
        """``[offset +size] `` before a field when ``enabled`` (bits of a bit field: ``[offset,bit +n bit]``)."""
        if not enabled:
            return ""
        if bitoffset is not None:
            return f"[{offset},{bitoffset} +{size} bit]"
        return f"[{offset} +{size}] "

    @classmethod
    def print_ct_map(cls, t: Any, indent: str = "", offset: int = 0, sizeinfo: bool = False) -> list[str]:
        """The fields of struct or union ``t``, one line each, nested ones indented."""
        lines: list[str] = []
        for field in t._fields_:
            name, ftype = field[0], field[1]
            descriptor = getattr(t, name)
            where = offset + descriptor.offset
            if len(field) == 3:  # a bit field: ctypes packs its bit offset in the descriptor's size
                bits, bit_offset = field[2], descriptor.size & 0xFFFF
                info = cls.format_size_info(where, bits, sizeinfo, bit_offset)
                lines.append(f"{indent}{info}{cls.get_ct_name(ftype)} {name}:{bits};")
                continue
            info = cls.format_size_info(where, ct.sizeof(ftype), sizeinfo)
            if isinstance(ftype, type) and issubclass(ftype, (ct.Structure, ct.Union)):
                lines.append(f"{indent}{info}{cls.get_ct_name(ftype)} {{")
                lines += cls.print_ct_map(ftype, indent + "  ", where, sizeinfo)
                lines.append(f"{indent}}} {name};")
            else:
                lines.append(f"{indent}{info}{cls.get_ct_name(ftype)} {name};")
        return lines

    @classmethod
    def print_map_ctype(cls, t: Any, field_name: str, sizeinfo: bool) -> list[str]:
        if isinstance(t, type) and issubclass(t, (ct.Structure, ct.Union)):
            return [
                f"  {cls.get_ct_name(t)} {{",
                *cls.print_ct_map(t, "    ", sizeinfo=sizeinfo),
                f"  }} {field_name};",
            ]
        return [f"  {cls.get_ct_name(t)} {field_name};"]

    @classmethod
    def decode_map(cls, map_name: str, map_obj: Any, map_type: str, sizeinfo: bool = False) -> str:
        lines = [f"Layout of BPF map {map_name} (type {map_type}, FD {map_obj.map_fd}, ID {map_obj.map_id}):"]
        if hasattr(map_obj, "Key"):  # queues and stacks have values only
            lines += cls.print_map_ctype(map_obj.Key, "key", sizeinfo)
        lines += cls.print_map_ctype(map_obj.Leaf, "value", sizeinfo)
        return linesep.join(lines)


def decode_map(map_name: str, map_obj: Any, map_type: int, sizeinfo: bool = False) -> str:
    """The layout of table ``map_obj`` (of BPF_MAP_TYPE ``map_type``) as bcc prints it; ``sizeinfo`` adds
    each field's offset and size. The ID is the kernel's map id."""
    return MapDecoder.decode_map(map_name, map_obj, get_table_type_name(map_type), sizeinfo)
