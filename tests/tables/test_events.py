"""Perf and ring buffer tables (rbcc._tables.events) over fakes of the map and the core: what they hand the
core, how records decode, what becomes of a callback's exception."""

from __future__ import annotations

import ctypes
import struct
from typing import Any

import pytest
from _fakes import (
    NCPU,
    PERF,
    RINGBUF,
    U32,
    FakeBPF,
    FakeMap,
    FakePerfBuffer,
)
from _pure_rbcc import load

table = load("table")
hist = load("_tables.hist")
errors = load("errors")
events = load("_tables.events")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- perf and ring buffers --


def event_bytes(pid: int, ts: int, comm: bytes) -> bytes:
    return struct.pack("<I4xQ8s", pid, ts, comm)


def in_memory(raw: bytes) -> tuple[Any, int, int]:
    """``raw`` where the core's callbacks find a record: (the buffer to keep alive, its address, size)."""
    buf = ctypes.create_string_buffer(raw, len(raw))
    return buf, ctypes.addressof(buf), len(raw)


def test_perf_buffer_hands_the_callback_to_the_core() -> None:
    bpf = FakeBPF()
    t = table.table_for(bpf, FakeMap(PERF, max_entries=NCPU, key_desc=U32, value_desc=U32), "events")
    assert type(t) is table.PerfEventArray

    def callback(cpu: int, data: Any, size: int) -> None:
        pass

    lost: list[int] = []
    t.open_perf_buffer(callback, page_cnt=16, lost_cb=lost.append, wakeup_events=8)
    buffer = bpf.perf_buffers["events"]
    assert isinstance(buffer, FakePerfBuffer) and buffer.page_cnt == 16 and buffer.map is t.map
    assert (buffer.wakeup_events, buffer.record_size) == (8, None)
    # the core calls the user's callback itself, with bcc's (cpu, address, size), and hands what it
    # raises to the table's handler
    assert buffer.callback is callback and buffer.on_error is events._callback_failed
    buffer.lost_callback(1, 7)
    assert lost == [7]


def test_event_at_an_address_reads_the_record_in_place() -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERF, max_entries=NCPU), "events")
    keep, addr, _ = in_memory(event_bytes(99, 123, b"bash"))
    for _ in range(2):  # the first call builds the type, the next takes the fast path
        ev = t.event(addr)
        assert (ev.pid, ev.ts, ev.comm) == (99, 123, b"bash")
        assert ctypes.addressof(ev) == addr
    # as bcc's ctypes callback argument would be, too
    assert t.event(ctypes.c_void_p(addr)).pid == 99
    assert t.event(ctypes.cast(addr, ctypes.POINTER(ctypes.c_char))).ts == 123
    with pytest.raises(ValueError, match="NULL"):
        t.event(0)
    del keep


def test_perf_buffer_without_lost_cb_and_bad_page_cnt() -> None:
    bpf = FakeBPF()
    t = table.table_for(bpf, FakeMap(PERF, max_entries=NCPU), "events")
    t.open_perf_buffer(lambda cpu, data, size: None)
    assert bpf.perf_buffers["events"].lost_callback is None
    with pytest.raises(errors.BPFError, match="power of two"):
        t.open_perf_buffer(lambda cpu, data, size: None, page_cnt=3)


def test_event_from_bytes() -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERF, max_entries=NCPU), "events")
    ev = t.event(event_bytes(1, 2, b"sh"))
    assert (ev.pid, ev.ts, ev.comm) == (1, 2, b"sh")


def test_event_type_unknown_says_what_to_do() -> None:
    t = table.table_for(FakeBPF(event_desc=None), FakeMap(PERF, max_entries=NCPU), "events")
    with pytest.raises(errors.BPFError, match=r"ctypes\.cast"):
        t.event(b"")


def test_ring_buffer_hands_the_callback_to_the_core() -> None:
    bpf = FakeBPF()
    m = FakeMap(RINGBUF, key_size=0, value_size=0, max_entries=4096)
    t = table.table_for(bpf, m, "rb")
    assert type(t) is table.RingBuf and len(t) == 0 and list(t) == []

    def callback(ctx: Any, data: Any, size: int) -> Any:
        return 0

    t.open_ring_buffer(callback, ctx="c")
    assert bpf.ring_buffers["rb"] == (m, callback, "c", events._callback_failed)


def test_callback_exception_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    def on_event(cpu: int, data: int, size: int) -> None:
        raise ValueError("bad record")

    try:
        on_event(0, 0, 0)
    except ValueError as e:
        events._callback_failed(on_event, e)
    err = capsys.readouterr().err
    assert "Exception in event callback test_callback_exception_is_printed.<locals>.on_event" in err
    assert "Traceback (most recent call last):" in err and 'raise ValueError("bad record")' in err
    assert err.rstrip().endswith("ValueError: bad record")


def test_callback_broken_pipe_exits_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        events._callback_failed(print, BrokenPipeError(32, "Broken pipe"))
    assert capsys.readouterr().err == ""
    lost = events._lost_trampoline(lambda count: print(1 / count))
    lost(0, 0)  # a lost callback's exception is printed too, and the poll goes on
    assert "ZeroDivisionError" in capsys.readouterr().err
