"""bcc's text forms of keys and values (key_sprintf/leaf_sprintf/key_scanf/leaf_scanf) for maps whose
types come from a real program's BTF, with bcc's own examples and values the program wrote."""

from __future__ import annotations

import ctypes
import os

import pytest
from _bpfutil import own_comm, target_cflags

from rbcc import BPF
from rbcc._tables.text import ScanfError

pytestmark = pytest.mark.needs_root


def test_bitfields_print_as_their_storage_unit_as_in_bcc() -> None:
    # bcc's test declares the value struct inline in BPF_HASH; rbcc's rewriter wants it named
    text = """
struct v { u64 a; u64 b; u64 c:36; u64 d:28; struct { u32 a; u32 b; } s; };
BPF_HASH(stats, int, struct v, 10);
"""
    with BPF(text=text) as b:
        t = b["stats"]
        assert t.key_sprintf(t.Key(2)) == b"0x2"
        assert t.key_sprintf(2) == b"0x2"
        leaf = t.Leaf(2, 3, 4, 1, (5, 6))
        # c (36 bits) and d (28 bits) share one u64, printed whole: 4 | 1 << 36
        assert t.leaf_sprintf(leaf) == b"{ 0x2 0x3 0x1000000004 { 0x5 0x6 } }"
        back = t.leaf_scanf(t.leaf_sprintf(leaf))
        assert (back.a, back.b, back.c, back.d, back.s.a, back.s.b) == (2, 3, 4, 1, 5, 6)


def test_arrays_as_in_bcc() -> None:
    with BPF(text="struct v { u32 a[3]; u32 b; }; BPF_HASH(stats, int, struct v, 10);") as b:
        t = b["stats"]
        s = t.leaf_sprintf(t.Leaf((ctypes.c_uint * 3)(1, 2, 3), 4))
        assert s == b"{ [ 0x1 0x2 0x3 ] 0x4 }"
        back = t.leaf_scanf(s)
        assert (list(back.a), back.b) == ([1, 2, 3], 4)


def test_strings_as_in_bcc() -> None:
    text = r"""
struct Symbol { char name[128]; char path[128]; };
struct Event { u32 pid; u32 tid; struct Symbol stack[64]; };
BPF_TABLE("array", int, struct Event, comms, 1);
"""
    with BPF(text=text) as b:
        t = b["comms"]
        fill = b' { "" "" }' * 63
        assert t.leaf_sprintf(t[0]) == b'{ 0x0 0x0 [ { "" "" }%s ] }' % fill
        leaf = t.Leaf(1, 2)
        leaf.stack[0].name = b"libxyz"
        leaf.stack[0].path = b"/usr/lib/libxyz.so"
        s = t.leaf_sprintf(leaf)
        assert s == b'{ 0x1 0x2 [ { "libxyz" "/usr/lib/libxyz.so" }%s ] }' % fill
        back = t.leaf_scanf(s)
        assert (back.pid, back.tid, back.stack[0].name, back.stack[0].path) == (1, 2, b"libxyz", b"/usr/lib/libxyz.so")
        t[0] = back
        assert t[0].stack[0].path == b"/usr/lib/libxyz.so"


PROGRAM = r"""
struct key_t { u32 pid; s16 delta; char comm[16]; };
struct val_t { u64 count; s32 last; u8 flags[2]; };
BPF_HASH(seen, struct key_t, struct val_t);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct key_t k = {.pid = bpf_get_current_pid_tgid() >> 32, .delta = -2};
    if (k.pid != TARGET)
        return 0;
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    struct val_t zero = {}, *v = seen.lookup_or_try_init(&k, &zero);
    if (v) {
        v->count += 1;
        v->last = -1;
        v->flags[1] = 0x7f;
    }
    return 0;
}
"""


def test_what_the_program_wrote_reads_back_from_its_text() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        seen = b["seen"]
        os.getppid()
        os.getppid()
        ((key, value),) = seen.items()
        key_text = seen.key_sprintf(key)
        # signed fields print in their own width, two's complement, as bcc's %hx/%x do
        assert key_text == b'{ 0x%x 0xfffe "%s" }' % (os.getpid(), own_comm())
        assert seen.leaf_sprintf(value) == b'{ 0x2 0xffffffff "" }'  # u8[2] {0, 0x7f} is a string, empty
        # the text finds the entry again
        assert seen[seen.key_scanf(key_text)].count == 2
        assert seen[seen.key_scanf(key_text.decode())].count == 2
        # and writes one
        seen[seen.key_scanf('{ 1 -2 "other" }')] = seen.leaf_scanf("{ 5 -7 [ 1 2 ] }".replace("[ 1 2 ]", '"ab"'))
        other = seen[seen.Key(pid=1, delta=-2, comm=b"other")]
        assert (other.count, other.last, bytes(other.flags)) == (5, -7, b"ab")


def test_bad_text_is_a_clear_error() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        seen = b["seen"]
        with pytest.raises(ScanfError, match="expected a number"):
            seen.key_scanf('{ 0x1 "x" "comm" }')
        with pytest.raises(ValueError, match="the end of the text"):
            seen.key_scanf('{ 1 2 "comm" } extra')
        with pytest.raises(ScanfError, match="longer than its 16-byte field"):
            seen.key_scanf('{ 1 2 "%s" }' % ("x" * 17))
