"""Smaller constructs of bcc's C dialect on the real kernel: map values of untagged struct types."""

from __future__ import annotations

import ctypes
import os

import pytest
from _bpfutil import target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root

ANONYMOUS_VALUES = r"""
BPF_HASH(h, u32, struct { u64 calls; u64 size; struct { u32 x; u16 y; } inner; });
BPF_ARRAY(arr, struct { int n; char tag[4]; }, 2);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 7;
    typeof(h.leaf) zero = {};
    typeof(h.leaf) *v = h.lookup_or_try_init(&k, &zero);
    if (v) {
        v->calls += 1;
        v->size = sizeof(h.leaf) + sizeof(h.key);
        v->inner.x = 99;
        v->inner.y = 5;
    }
    int i = 1;
    struct { int n; char tag[4]; } *e = arr.lookup(&i);
    if (e) {
        e->n = 42;
        e->tag[0] = 'o';
        e->tag[1] = 'k';
    }
    return 0;
}
"""


def test_untagged_struct_values_are_written_and_read_back_by_field() -> None:
    with BPF(text=ANONYMOUS_VALUES, cflags=target_cflags()) as b:
        for _ in range(3):
            os.getppid()
        v = b["h"][ctypes.c_uint(7)]
        assert (v.calls, v.size, v.inner.x, v.inner.y) == (3, 24 + 4, 99, 5)
        assert [name for name, *_ in b["h"].Leaf._fields_] == ["calls", "size", "inner"]
        e = b["arr"][1]
        assert (e.n, e.tag) == (42, b"ok")
