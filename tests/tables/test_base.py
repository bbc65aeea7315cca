"""rbcc.table: bcc-compatible tables, driven through a fake in-memory map (no root, no compiled core)."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any

import pytest
from _fakes import (
    ARRAY,
    COMM_KEY,
    DEV_KEY,
    HASH,
    NCPU,
    PERCPU_ARRAY,
    PERCPU_HASH,
    PERF,
    RINGBUF,
    S32,
    STACK,
    U32,
    U64,
    FakeBPF,
    FakeCore,
    FakeMap,
    FakePerfBuffer,
)
from _pure_rbcc import load

table = load("table")
hist = load("hist")
errors = load("errors")


@pytest.fixture(autouse=True)
def fake_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "_core_module", lambda: FakeCore)


def hash_table(entries: dict[int, int] | None = None, key_desc: dict[str, Any] = S32) -> Any:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_desc=key_desc, value_desc=U64), "dist")
    for k, v in (entries or {}).items():
        t[k] = v
    return t


def struct_table(key_desc: dict[str, Any], entries: dict[tuple[Any, int], int]) -> Any:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_size=16, key_desc=key_desc, value_desc=U64), "dist")
    first = key_desc["members"][0]["name"]
    for (bucket, slot), count in entries.items():
        t[t.Key(**{first: bucket, "slot": slot})] = count
    return t


def printed(capsys: pytest.CaptureFixture[str], fn: Callable[[], None]) -> str:
    fn()
    return capsys.readouterr().out


# -- log2 histograms --

NARROW_VALUE = "     value               : count     distribution"
STARS40 = "*" * 40


def test_log2_empty_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, hash_table().print_log2_hist) == ""


def test_log2_slot_zero_alone_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # bcc's loop starts at slot 1 and prints the header only when a slot above 0 is set
    assert printed(capsys, hash_table({0: 4}).print_log2_hist) == ""


def test_log2_single_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({3: 5}).print_log2_hist("usecs"))
    assert out == (
        "     usecs               : count     distribution\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 0        |                                        |\n"
        "         4 -> 7          : 5        |****************************************|\n"
    )


def test_log2_stars_scale_to_max_and_truncate(capsys: pytest.CaptureFixture[str]) -> None:
    # 40*7/9 = 31.1 -> 31 stars, 40*3/9 = 13.3 -> 13 stars
    out = printed(capsys, hash_table({1: 7, 2: 9, 4: 3}).print_log2_hist)
    assert out == (
        NARROW_VALUE + "\n"
        "         0 -> 1          : 7        |*******************************         |\n"
        "         2 -> 3          : 9        |****************************************|\n"
        "         4 -> 7          : 0        |                                        |\n"
        "         8 -> 15         : 3        |*************                           |\n"
    )


def test_log2_slot_zero_counts_toward_max(capsys: pytest.CaptureFixture[str]) -> None:
    # slot 0 is never printed but its 10 is the maximum: 5 gets half the bar
    out = printed(capsys, hash_table({0: 10, 1: 5}).print_log2_hist)
    assert out == NARROW_VALUE + "\n         0 -> 1          : 5        |********************                    |\n"


def test_log2_wide_layout_above_slot_32(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({33: 2, 34: 1}).print_log2_hist("bytes", strip_leading_zero=True))
    assert out == (
        "               bytes                         : count     distribution\n"
        "          4294967296 -> 8589934591           : 2        |********************|\n"
        "          8589934592 -> 17179869183          : 1        |**********          |\n"
    )


def test_log2_slot_32_keeps_narrow_layout(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({32: 1}).print_log2_hist(strip_leading_zero=True))
    assert out == NARROW_VALUE + "\n2147483648 -> 4294967295 : 1        |" + STARS40 + "|\n"


def test_log2_wide_layout_prints_every_row_from_slot_1(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, hash_table({40: 1}).print_log2_hist).splitlines()
    assert len(lines) == 41
    assert lines[1] == "                   0 -> 1                    : 0        |                    |"


def test_log2_strip_leading_zero_keeps_inner_zeros(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({3: 1, 5: 2}).print_log2_hist(strip_leading_zero=True))
    assert out == (
        NARROW_VALUE + "\n"
        "         4 -> 7          : 1        |********************                    |\n"
        "         8 -> 15         : 0        |                                        |\n"
        "        16 -> 31         : 2        |****************************************|\n"
    )


def test_log2_over_an_array_map(capsys: pytest.CaptureFixture[str]) -> None:
    t = table.table_for(FakeBPF(), FakeMap(ARRAY, max_entries=8, key_desc=S32, value_desc=U64), "dist")
    t[2] = 3
    out = printed(capsys, t.print_log2_hist)
    assert out == (
        NARROW_VALUE + "\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 3        |****************************************|\n"
    )


# -- sections (struct keys) --

DEV_SECTIONS = {(8, 1): 1, (8, 2): 2, (3, 1): 4}
DEV3 = NARROW_VALUE + "\n         0 -> 1          : 4        |" + STARS40 + "|\n"
DEV8 = (
    NARROW_VALUE + "\n"
    "         0 -> 1          : 1        |********************                    |\n"
    "         2 -> 3          : 2        |****************************************|\n"
)


def test_sections_raw_bucket_sorted(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, struct_table(DEV_KEY, DEV_SECTIONS).print_log2_hist)
    assert out == "\nBucket ptr = 3\n" + DEV3 + "\nBucket ptr = 8\n" + DEV8


def test_sections_with_print_fn(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, DEV_SECTIONS)
    out = printed(capsys, lambda: t.print_log2_hist("value", "disk", section_print_fn=lambda b: f"dev{b}"))
    assert out == "\ndisk = dev3\n" + DEV3 + "\ndisk = dev8\n" + DEV8


def test_sections_with_sort_fn(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, DEV_SECTIONS)
    out = printed(capsys, lambda: t.print_log2_hist(bucket_sort_fn=lambda b: sorted(b, reverse=True)))
    assert out == "\nBucket ptr = 8\n" + DEV8 + "\nBucket ptr = 3\n" + DEV3


def test_sections_bucket_fn_maps_first(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(8, 1): 1, (3, 2): 1})
    seen: list[Any] = []
    out = printed(capsys, lambda: t.print_log2_hist(bucket_fn=lambda b: b * 10, section_print_fn=seen.append))
    assert seen == [30, 80]
    assert out.startswith("\nBucket ptr = None\n")


def test_sections_bytes_bucket_uses_repr(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, struct_table(COMM_KEY, {(b"sh", 1): 1}).print_log2_hist)
    assert out == "\nBucket ptr = b'sh'\n" + NARROW_VALUE + "\n         0 -> 1          : 1        |" + STARS40 + "|\n"


def test_sections_strip_leading_zero(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(1, 3): 2})
    out = printed(capsys, lambda: t.print_log2_hist(strip_leading_zero=True))
    assert out == "\nBucket ptr = 1\n" + NARROW_VALUE + "\n         4 -> 7          : 2        |" + STARS40 + "|\n"


# -- linear histograms --

LINEAR_VALUE = "     value         : count     distribution"


def test_linear_basic(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({1: 2, 3: 4}).print_linear_hist("kbytes"))
    assert out == (
        "     kbytes        : count     distribution\n"
        "        0          : 0        |                                        |\n"
        "        1          : 2        |********************                    |\n"
        "        2          : 0        |                                        |\n"
        "        3          : 4        |****************************************|\n"
    )


def test_linear_empty_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, hash_table().print_linear_hist) == ""


def test_linear_prints_slot_zero(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, hash_table({0: 5}).print_linear_hist)
    assert out == LINEAR_VALUE + "\n        0          : 5        |" + STARS40 + "|\n"


def test_linear_strip_leading_zero(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({2: 1, 4: 1}).print_linear_hist(strip_leading_zero=True))
    assert out == (
        LINEAR_VALUE + "\n"
        "        2          : 1        |****************************************|\n"
        "        3          : 0        |                                        |\n"
        "        4          : 1        |****************************************|\n"
    )


def test_linear_beyond_bcc_limit_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, hash_table({2000: 1}).print_linear_hist).splitlines()
    assert len(lines) == 2002


def test_linear_sections(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(1, 0): 1, (1, 2): 1})
    out = printed(capsys, lambda: t.print_linear_hist(section_header="cpu"))
    assert out == (
        "\ncpu = 1\n" + LINEAR_VALUE + "\n"
        "        0          : 1        |****************************************|\n"
        "        1          : 0        |                                        |\n"
        "        2          : 1        |****************************************|\n"
    )


def test_stars_plus_marks_overflow() -> None:
    assert hist.stars(5, 4, 40) == "*" * 39 + "+"
    assert hist.stars(0, 4, 40) == ""
    assert hist.stars(1, 3, 40) == "*" * 13


def test_json_hist(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hist, "strftime", lambda fmt: "T")
    out = printed(capsys, hash_table({1: 1, 3: 3}).print_json_hist)
    assert out == (
        "{'ts': 'T', 'val_type': 'value', 'data': [{'interval-start': 0, 'interval-end': 1, 'count': 1}, "
        "{'interval-start': 2, 'interval-end': 3, 'count': 0}, {'interval-start': 4, 'interval-end': 7, 'count': 3}]}\n"
    )


# -- hash tables --


def test_hash_keys_accept_int_key_and_ctypes() -> None:
    t = hash_table()
    t[1] = 10
    t[t.Key(2)] = t.Leaf(20)
    t[ctypes.c_int(3)] = ctypes.c_ulonglong(30)
    assert t[1].value == 10
    assert t[ctypes.c_uint(2)].value == 20
    assert isinstance(t[3], t.Leaf)
    assert sorted(k.value for k in t) == [1, 2, 3]
    keys = list(t.keys())
    assert len(keys) == 3 and all(isinstance(k, t.Key) for k in keys)
    assert len(t) == 3
    assert 2 in t and 9 not in t and "x" not in t
    assert sorted((k.value, v.value) for k, v in t.items()) == [(1, 10), (2, 20), (3, 30)]
    assert sorted(v.value for v in t.values()) == [10, 20, 30]


def test_hash_missing_and_delete() -> None:
    t = hash_table({1: 10})
    with pytest.raises(KeyError):
        t[5]
    assert t.get(5) is None and t.get(5, "d") == "d" and t.lookup(5) is None
    assert t.get(1).value == 10
    del t[1]
    with pytest.raises(KeyError):
        del t[1]
    assert len(t) == 0


def test_hash_update_clear_zero() -> None:
    t = hash_table()
    t.update(1, 5)
    t.update({2: 6})
    assert sorted(v.value for v in t.values()) == [5, 6]
    t.zero()
    assert len(t) == 2 and all(v.value == 0 for v in t.values())
    t.clear()
    assert len(t) == 0


def test_struct_keys_and_bytes() -> None:
    t = struct_table(DEV_KEY, {(7, 3): 9})
    (key,) = list(t)
    assert (key.dev, key.slot) == (7, 3)
    assert t[bytes(key)].value == 9
    with pytest.raises(TypeError):
        t[3]


def test_fallback_types_without_btf() -> None:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_size=4, value_size=12), "raw")
    assert t.Key is ctypes.c_uint32
    assert ctypes.sizeof(t.Leaf) == 12 and t.Leaf._type_ is ctypes.c_ubyte


def test_explicit_types_override_btf() -> None:
    class Leaf(ctypes.Structure):
        _fields_ = [("n", ctypes.c_uint64)]

    t = table.table_for(FakeBPF(), FakeMap(HASH, key_desc=S32, value_desc=U64), "t", leaftype=Leaf)
    t[1] = Leaf(4)
    assert t[1].n == 4


# -- arrays --


def array_table(max_entries: int = 4) -> Any:
    return table.table_for(FakeBPF(), FakeMap(ARRAY, max_entries=max_entries, key_desc=U32, value_desc=U64), "a")


def test_array_indices() -> None:
    t = array_table()
    assert type(t) is table.Array
    assert len(t) == 4
    assert [k.value for k in t] == [0, 1, 2, 3]
    t[-1] = 7
    assert t[3].value == 7
    with pytest.raises(IndexError):
        t[4]
    with pytest.raises(IndexError):
        t["0"]
    assert 3 in t and 4 not in t
    assert [v.value for v in t.values()] == [0, 0, 0, 7]


def test_array_delete_and_clear_zero() -> None:
    t = array_table()
    t[1] = 5
    t[2] = 6
    del t[1]
    assert t[1].value == 0 and t[2].value == 6
    t.clear()
    assert [v.value for v in t.values()] == [0, 0, 0, 0]


def test_histogram_table_is_an_array() -> None:
    assert issubclass(table.HistogramTable, table.Array)


# -- per-CPU --


def test_percpu_hash_values() -> None:
    m = FakeMap(PERCPU_HASH, value_size=4, key_desc=U32, value_desc=U32)
    t = table.table_for(FakeBPF(), m, "pc")
    assert type(t) is table.PerCpuHash and t.total_cpu == NCPU
    t[1] = [1, 2, 3, 4]
    assert list(t[1]) == [1, 2, 3, 4]
    assert list(t.getvalue(1)) == [1, 2, 3, 4]
    assert t.sum(1).value == 10 and isinstance(t.sum(1), t.sLeaf)
    assert t.max(1).value == 4
    assert t.average(1) == 2.5
    assert m.data[struct.pack("<I", 1)][0] == struct.pack("<I", 1) + bytes(4)  # 8-byte per-CPU stride
    t.zero()
    assert list(t[1]) == [0, 0, 0, 0]


def test_percpu_reducer() -> None:
    m = FakeMap(PERCPU_HASH, key_desc=U32, value_desc=U64)
    t = table.table_for(FakeBPF(), m, "pc", reducer=lambda a, b: a + b)
    t[1] = t.Leaf(1, 2, 3, 4)
    assert t[1] == 10
    assert list(t.getvalue(1)) == [1, 2, 3, 4]


def test_percpu_array() -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERCPU_ARRAY, max_entries=2, key_desc=U32, value_desc=U64), "pa")
    assert type(t) is table.PerCpuArray
    assert list(t[0]) == [0] * NCPU
    t[1] = [5] * NCPU
    assert t.sum(1).value == 20
    del t[1]
    assert list(t[1]) == [0] * NCPU


def test_percpu_hist_sums_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERCPU_HASH, key_desc=S32, value_desc=U64), "pc")
    t[1] = [1, 1, 1, 1]
    out = printed(capsys, t.print_log2_hist)
    assert out == NARROW_VALUE + "\n         0 -> 1          : 4        |" + STARS40 + "|\n"


# -- stack traces --


def test_stack_walk() -> None:
    m = FakeMap(STACK, value_size=127 * 8, key_desc=U32)
    t = table.table_for(FakeBPF(), m, "stacks")
    assert type(t) is table.StackTrace and t.Leaf._length_ == 127
    m.data[struct.pack("<I", 5)] = struct.pack("<3Q", 0xFFFF1, 0xFFFF2, 0) + bytes(124 * 8)
    assert list(t.walk(5)) == [0xFFFF1, 0xFFFF2]
    assert list(t.walk(5, resolve=hex)) == ["0xffff1", "0xffff2"]
    assert len(t[5]) == 127
    with pytest.raises(KeyError):
        t.walk(6)
    with pytest.raises(KeyError):
        t.walk(-14)  # a failed bpf_get_stackid() result
    t.clear()
    assert len(t) == 0


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
    assert buffer.callback is callback and buffer.on_error is table._callback_failed
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
    assert bpf.ring_buffers["rb"] == (m, callback, "c", table._callback_failed)


def test_callback_exception_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    def on_event(cpu: int, data: int, size: int) -> None:
        raise ValueError("bad record")

    try:
        on_event(0, 0, 0)
    except ValueError as e:
        table._callback_failed(on_event, e)
    err = capsys.readouterr().err
    assert "Exception in event callback test_callback_exception_is_printed.<locals>.on_event" in err
    assert "Traceback (most recent call last):" in err and 'raise ValueError("bad record")' in err
    assert err.rstrip().endswith("ValueError: bad record")


def test_callback_broken_pipe_exits_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        table._callback_failed(print, BrokenPipeError(32, "Broken pipe"))
    assert capsys.readouterr().err == ""
    lost = table._lost_trampoline(lambda count: print(1 / count))
    lost(0, 0)  # a lost callback's exception is printed too, and the poll goes on
    assert "ZeroDivisionError" in capsys.readouterr().err


# -- factory --


def test_factory_unknown_type() -> None:
    with pytest.raises(errors.BPFError, match="99"):
        table.table_for(FakeBPF(), FakeMap(99), "odd")


def test_type_names() -> None:
    assert table.get_table_type_name(1) == "HASH"
    assert table.get_table_type_name(27) == "RINGBUF"
    assert table.get_table_type_name(1000) == "<unknown>"
    assert table.get_table_type_name(22) == "QUEUE"
    assert table.get_table_type_name(32) == "CGRP_STORAGE"


def test_every_kind_has_a_class() -> None:
    # the map types a user space table can serve, each with bcc's class name where bcc has one
    expected = {
        11: "LpmTrie",
        12: "MapInMapArray",
        13: "MapInMapHash",
        14: "DevMap",
        15: "SockMap",
        16: "CpuMap",
        17: "XskMap",
        18: "SockHash",
        19: "CgroupStorage",
        21: "PerCpuCgroupStorage",
        22: "QueueStack",
        23: "QueueStack",
        24: "SkStorage",
        25: "DevMapHash",
        28: "InodeStorage",
        29: "TaskStorage",
        32: "CgrpStorage",
    }
    for map_type, name in expected.items():
        t = table.table_for(FakeBPF(), FakeMap(map_type, key_desc=U32, value_desc=U64), "m")
        assert type(t).__name__ == name, map_type


# -- text forms (bcc's key_sprintf / leaf_sprintf and their scanf inverses) --

tabletext = load("tabletext")


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


# -- batch operations over a fake map: the paths the real kernel seldom takes --


class BatchMap(FakeMap):
    """FakeMap with the core's batch calls; ``unsupported`` names the ones to refuse as an old kernel would."""

    def __init__(self, *args: Any, unsupported: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unsupported = unsupported
        self.calls: list[str] = []

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.unsupported:
            raise errors.KernelFeatureError(f"{name} is not supported for map 'fake' by this kernel")

    def lookup_batch(self) -> tuple[bytes, bytes]:
        self._enter("lookup_batch")
        return b"".join(self.data), b"".join(self.data.values())

    def lookup_and_delete_batch(self) -> tuple[bytes, bytes]:
        self._enter("lookup_and_delete_batch")
        out = self.lookup_batch()
        self.data.clear()
        return out

    def update_batch(self, keys: bytes, values: bytes, flags: int = 0) -> None:
        self._enter("update_batch")
        n = len(keys) // self.key_size
        for i in range(n):
            self.data[keys[i * self.key_size : (i + 1) * self.key_size]] = values[i * 8 : (i + 1) * 8]

    def delete_batch(self, keys: bytes) -> None:
        self._enter("delete_batch")
        for i in range(len(keys) // self.key_size):
            if self.data.pop(keys[i * self.key_size : (i + 1) * self.key_size], None) is None:
                raise KeyError(f"key #{i} of the batch is not in the map")


def batch_table(**kwargs: Any) -> Any:
    return table.table_for(FakeBPF(), BatchMap(HASH, key_desc=U32, value_desc=U64, **kwargs), "b")


def test_batch_methods_use_the_batch_calls() -> None:
    t = batch_table()
    t.items_update_batch((t.Key * 3)(1, 2, 3), (t.Leaf * 3)(10, 20, 30))
    assert sorted((k.value, v.value) for k, v in t.items_lookup_batch()) == [(1, 10), (2, 20), (3, 30)]
    t.items_delete_batch([2])
    assert sorted((k.value, v.value) for k, v in t.items_lookup_and_delete_batch()) == [(1, 10), (3, 30)]
    assert t.map.calls == ["update_batch", "lookup_batch", "delete_batch", "lookup_and_delete_batch", "lookup_batch"]
    assert len(t) == 0


def test_batch_methods_go_entry_by_entry_where_the_kernel_has_no_batch() -> None:
    every = ("lookup_batch", "lookup_and_delete_batch", "update_batch", "delete_batch")
    t = batch_table(unsupported=every)
    t.items_update_batch([1, 2, 3], [10, 20, 30])
    assert sorted((k.value, v.value) for k, v in t.items_lookup_batch()) == [(1, 10), (2, 20), (3, 30)]
    t.items_delete_batch([2])
    with pytest.raises(KeyError):
        t.items_delete_batch([2])
    assert sorted(k.value for k, _ in t.items_lookup_and_delete_batch()) == [1, 3]
    assert len(t) == 0


def test_delete_all_finishes_one_by_one_when_the_program_deleted_a_key_first() -> None:
    t = batch_table(unsupported=("lookup_and_delete_batch",))
    t.items_update_batch([1, 2, 3], [1, 2, 3])
    real_lookup = t.map.lookup_batch

    def racing_lookup() -> tuple[bytes, bytes]:
        out = real_lookup()
        del t.map.data[(2).to_bytes(4, "little")]  # the BPF program deletes key 2 meanwhile
        return out

    t.map.lookup_batch = racing_lookup
    t.items_delete_batch()
    t.map.lookup_batch = real_lookup
    assert len(t) == 0


def test_batch_arguments_are_checked_as_in_bcc() -> None:
    t = batch_table()
    with pytest.raises(ValueError, match="keys array length != values array length"):
        t.items_update_batch([1], [1, 2])
    with pytest.raises(ValueError, match="more than the map's 64 entries"):
        t.items_delete_batch(list(range(65)))
    with pytest.raises(TypeError, match="ctypes array"):
        t.items_update_batch("12", "34")
    t.items_update_batch([], [])  # nothing to do
    assert t.map.calls == []
