"""Maps that outlive one BPF object: pinned under bpffs, or exported to later programs of this process."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from _bpfutil import target_cflags

from rbcc import BPF
from rbcc.errors import BPFError

pytestmark = pytest.mark.needs_root

COUNTER = r"""
BPF_TABLE_PINNED("hash", u32, u64, counts, 16, PIN_PATH);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 1;
    counts.increment(k);
    return 0;
}
"""


def test_a_pinned_map_keeps_its_entries_across_programs(pin_path: Path) -> None:
    cflags = target_cflags(PIN_PATH=f'"{pin_path}"')
    with BPF(text=COUNTER, cflags=cflags) as first:
        for _ in range(3):
            os.getppid()
        assert first["counts"][ctypes.c_uint32(1)].value == 3
    assert pin_path.exists()  # pinned, so it outlives the program
    with BPF(text=COUNTER, cflags=cflags) as second:
        os.getppid()
        assert second["counts"][ctypes.c_uint32(1)].value == 4  # the same map, reused


def test_a_pinned_map_of_another_shape_is_refused(pin_path: Path) -> None:
    with BPF(text=COUNTER, cflags=target_cflags(PIN_PATH=f'"{pin_path}"')):
        pass
    other = COUNTER.replace("u32, u64, counts, 16", "u32, u32, counts, 16")
    with pytest.raises(BPFError) as err:
        BPF(text=other, cflags=target_cflags(PIN_PATH=f'"{pin_path}"'))
    assert str(pin_path) in str(err.value)


def test_a_relative_pin_path_is_a_compile_error() -> None:
    with pytest.raises(BPFError) as err:
        BPF(text=COUNTER, cflags=target_cflags(PIN_PATH='"relative/counts"'))
    assert "absolute" in str(err.value)


EXPORTER = r"""
BPF_TABLE_PUBLIC("hash", u32, u64, shared_counts, 16);
int unused(void *ctx) { return 0; }
"""

USER = r"""
BPF_TABLE("extern", u32, u64, shared_counts, 16);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u32 k = 7;
    shared_counts.increment(k);
    return 0;
}
"""


def test_an_exported_map_is_used_by_a_later_program_as_extern() -> None:
    with BPF(text=EXPORTER) as exporter:
        with BPF(text=USER, cflags=target_cflags()):
            os.getppid()
            os.getppid()
        assert exporter["shared_counts"][ctypes.c_uint32(7)].value == 2


def test_extern_without_an_exporter_names_the_map() -> None:
    with BPF(text=EXPORTER):
        pass  # closed: its export is withdrawn
    with pytest.raises(BPFError) as err:
        BPF(text=USER, cflags=target_cflags())
    assert "shared_counts" in str(err.value) and "exports it" in str(err.value)
