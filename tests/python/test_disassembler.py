"""rbcc.disassembler (bcc's ``bcc.disassembler``): instructions as bcc's lines, checked against hand-built
instructions, against bcc's own disassembler where Debian's bcc is installed, and on a loaded program
with its source lines (``BPF.disassemble_func``); a table's layout (``BPF.decode_table``)."""

from __future__ import annotations

import ctypes
import importlib.util
import struct
import sys
import types
from pathlib import Path

import pytest

from rbcc import BPF
from rbcc.disassembler import BPFDecoder, BPFInstr, disassemble_prog, disassemble_str

BCC_DISASSEMBLER = Path("/usr/lib/python3/dist-packages/bcc/disassembler.py")


def insn(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhI", opcode, src << 4 | dst, off, imm & 0xFFFFFFFF)


def test_each_kind_of_instruction() -> None:
    program = b"".join(
        [
            insn(0xB7, dst=1, imm=-3),  # mov r1, -3
            insn(0x07, dst=1, imm=8),  # add r1, 8
            insn(0x57, dst=1, imm=0xFF),  # and: bcc prints bitwise immediates in hex
            insn(0xBF, dst=6, src=1),  # mov r6, r1
            insn(0x18, dst=2, imm=0x89ABCDEF),  # lddw r2, 0x123456789abcdef
            insn(0x00, imm=0x01234567),
            insn(0x18, dst=1, src=1, imm=5),  # lddw r1, map fd 5
            insn(0x00),
            insn(0x85, imm=1),  # call bpf_map_lookup_elem
            insn(0x15, dst=0, off=2, imm=0),  # if r0 == 0 goto +2
            insn(0x79, dst=3, src=0, off=8),  # r3 = *(u64 *)(r0 + 8)
            insn(0x7B, dst=10, src=3, off=-16),  # *(u64 *)(r10 - 16) = r3
            insn(0xDB, dst=0, src=6, imm=0x01),  # r6 = atomic64_fetch_add(r0, r6)
            insn(0x16, dst=1, off=-1, imm=7),  # jmp32: if w1 == 7 goto -1
            insn(0xDC, dst=4, imm=16),  # be16 r4
            insn(0xB7, dst=0),
            insn(0x95),
        ]
    )
    assert disassemble_str(program) == [
        "   0: (b7) r1 = -3",
        "   1: (07) r1 += 8",
        "   2: (57) r1 &= 0xff",
        "   3: (bf) r6 = r1",
        "   4: (18) r2 = 0x123456789abcdef",
        "   5:      (64-bit upper word)",
        "   6: (18) r1 = <map at fd #5>",
        "   7:      (64-bit upper word)",
        "   8: (85) call bpf_map_lookup_elem#1",
        "   9: (15) if r0 == 0 goto pc+2 <12>",
        "  10: (79) r3 = *(u64*)(r0 +8)",
        "  11: (7b) *(u64*)(r10 -16) = r3",
        "  12: (db) r6 = atomic64_fetch_add((u64*)(r0 +0), r6)",
        "  13: (16) if w1 == 7 goto pc-1 <13>",
        "  14: (dc) r4 = be16 r4",
        "  15: (b7) r0 = 0",
        "  16: (95) exit",
    ]
    # rbcc's additions: a map's name after its fd, a source line before an instruction
    lines = disassemble_str(program[48:64], lines={0: "; int x = 1; @ main.c:3"}, maps={5: "counts"})
    assert lines[:2] == ["; int x = 1; @ main.c:3", "   0: (18) r1 = <map at fd #5> (counts)"]


def test_helpers_are_named_from_the_kernel() -> None:
    # bcc's list stops at its own version's helpers; this kernel's BTF names all of its own
    assert BPFDecoder.bpf_helpers[1] == "map_lookup_elem"
    assert "get_attach_cookie" in BPFDecoder.bpf_helpers and len(BPFDecoder.bpf_helpers) > 150
    assert disassemble_str(insn(0x85, imm=99999)) == ["   0: (85) call <unknown helper #99999>"]
    assert disassemble_str(insn(0x85, src=1, imm=-7)) == ["   0: (85) call -7"]  # a call of a subprogram


def test_the_instruction_structure_is_bpf_insn() -> None:
    w = BPFInstr.from_buffer_copy(insn(0x61, dst=3, src=7, off=-2, imm=-1))
    assert (w.opcode, w.dst, w.src, w.offset, w.offsetu, w.imm, w.immu) == (0x61, 3, 7, -2, 0xFFFE, -1, 0xFFFFFFFF)
    assert ctypes.sizeof(BPFInstr) == 8


def _bccs_disassembler() -> types.ModuleType:
    """bcc's disassembler.py, loaded on its own (it needs only bcc.table's type names, not libbcc)."""
    if not BCC_DISASSEMBLER.exists():
        pytest.skip("Debian's bcc (python3-bpfcc) is not installed: nothing to compare with")
    package = types.ModuleType("_bcc_pkg")
    package.__path__ = [str(BCC_DISASSEMBLER.parent)]
    table = types.ModuleType("_bcc_pkg.table")
    table.get_table_type_name = str  # type: ignore[attr-defined]
    sys.modules.update({"_bcc_pkg": package, "_bcc_pkg.table": table})
    spec = importlib.util.spec_from_file_location("_bcc_pkg.disassembler", BCC_DISASSEMBLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROGRAM = r"""
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 zero = 0, *v = counts.lookup_or_try_init(&pid, &zero);
    if (v)
        (*v) += 2;
    return 0;
}
"""
FN = "tracepoint__syscalls__sys_enter_getppid"


@pytest.mark.needs_root
def test_the_lines_are_bccs_for_what_bcc_decodes() -> None:
    bcc = _bccs_disassembler()
    with BPF(text=PROGRAM) as b:
        raw = b.dump_func(FN)
    theirs, ours = bcc.disassemble_prog(FN, raw).splitlines(), disassemble_prog(FN, raw).splitlines()
    assert len(theirs) == len(ours)
    for bcc_line, line in zip(theirs, ours, strict=True):
        if "64-bit upper word" in line:
            # bcc numbers lddw's second half as the instruction after it; it is the one after lddw
            index = int(line.split(":")[0])
            assert bcc_line == line.replace(f"{index:4d}:", f"{index + 1:4d}:")
        else:
            assert bcc_line == line


@pytest.mark.needs_root
def test_disassemble_func_shows_the_source_lines_and_the_maps() -> None:
    with BPF(text=PROGRAM) as b:
        text = b.disassemble_func(FN)
        plain = b.disassemble_func(FN, source=False)
        count = len(b.dump_func(FN)) // 8
    lines = text.splitlines()
    assert lines[0] == f"Disassemble of BPF program {FN}:"
    # the user's own lines (the C compiled calls the map's method by another name), where clang put them
    assert "; u64 zero = 0, *v = counts.lookup_or_try_init(&pid, &zero); @ main.c:5" in lines
    assert "; return 0; @ main.c:8" in lines
    assert any(line.endswith("(85) call bpf_get_current_pid_tgid#14") for line in lines)
    assert any("= <map at fd #" in line and line.endswith("> (counts)") for line in lines)
    assert lines[-1].endswith("(95) exit")
    # without source lines: bcc's lines alone, one per instruction
    assert [line for line in lines if not line.startswith(";")] == plain.splitlines()
    assert len(plain.splitlines()) == 1 + count


@pytest.mark.needs_root
def test_decode_table_prints_the_layout() -> None:
    text = r"""
    struct key_t { u32 pid; char comm[16]; };
    struct val_t { u64 count; struct { u32 lo; u32 hi; } range; };
    BPF_HASH(tasks, struct key_t, struct val_t);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }
    """
    with BPF(text=text) as b:
        layout = b.decode_table("tasks", sizeinfo=True)
        table = b["tasks"]
        assert layout.splitlines() == [
            f"Layout of BPF map tasks (type HASH, FD {table.map_fd}, ID {table.map_id}):",
            "  struct {",
            "    [0 +4] unsigned int pid;",
            "    [4 +16] char[16] comm;",
            "  } key;",
            "  struct {",
            "    [0 +8] unsigned long long count;",
            "    [8 +8] struct {",
            "      [8 +4] unsigned int lo;",
            "      [12 +4] unsigned int hi;",
            "    } range;",
            "  } value;",
        ]
