"""rbcc._tables.arrays: numpy dtypes laid out as the ctypes types BTF gives, records read from packed buffers,
and (as root) tables and event batches from real programs as numpy arrays."""

from __future__ import annotations

import ctypes
import os
import threading
import time

import pytest
from _bpfutil import possible_cpus, target_cflags

from rbcc import BPF
from rbcc._tables.arrays import dtype_of, records
from rbcc.errors import BPFError

np = pytest.importorskip("numpy", reason="numpy (a dependency of rbcc) is not installed")


class Inner(ctypes.Structure):
    _fields_ = [("a", ctypes.c_uint16), ("b", ctypes.c_int64)]


class Outer(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("__pad_1", ctypes.c_ubyte * 4),
        ("inner", Inner),
        ("comm", ctypes.c_char * 16),
        ("addrs", ctypes.c_uint64 * 3),
        ("ptr", ctypes.c_void_p),
        ("ok", ctypes.c_bool),
    ]


def test_a_dtype_has_the_ctypes_layout_without_padding() -> None:
    dt = dtype_of(Outer)
    assert dt.itemsize == ctypes.sizeof(Outer)
    assert dt.names == ("pid", "inner", "comm", "addrs", "ptr", "ok")
    for name in dt.names:
        assert dt.fields[name][1] == getattr(Outer, name).offset, name
    assert dt["comm"] == np.dtype("S16") and dt["addrs"].shape == (3,) and dt["ptr"] == np.uint64
    assert dt["inner"]["b"] == np.int64 and dt["inner"].fields["b"][1] == 8


def test_values_read_through_the_dtype_equal_ctypes_reading() -> None:
    one = Outer(pid=7, inner=Inner(3, -5), comm=b"rbcc", ptr=0xFFFF888000001000, ok=True)
    one.addrs[:] = [1, 2, 3]
    arr = records(bytes(one) * 2, dtype_of(Outer))
    assert len(arr) == 2 and arr.flags.writeable
    row = arr[1]
    assert (row["pid"], row["inner"]["a"], row["inner"]["b"]) == (7, 3, -5)
    assert row["comm"] == b"rbcc" and list(row["addrs"]) == [1, 2, 3]
    assert row["ptr"] == 0xFFFF888000001000 and row["ok"]


def test_records_at_a_wider_stride_keep_only_their_own_bytes() -> None:
    raw = b"".join(bytes(ctypes.c_uint32(v)) + b"\xee" * 4 for v in (5, 6))
    assert list(records(raw, np.dtype(np.uint32), stride=8)) == [5, 6]
    assert len(records(b"", np.dtype(np.uint32), stride=8)) == 0


def test_a_bit_field_is_named_in_the_error() -> None:
    class Bits(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint32, 3), ("rest", ctypes.c_uint32, 29)]

    with pytest.raises(BPFError, match=r"Bits\.flags is a bit-field"):
        dtype_of(Bits)


# -- live: tables and event batches of a real program --

PROGRAM = r"""
#include <linux/sched.h>
struct key_t { u32 pid; char comm[TASK_COMM_LEN]; };
struct val_t { u64 calls; u64 last_ns; };
BPF_HASH(calls, struct key_t, struct val_t);
BPF_PERCPU_ARRAY(per_cpu, u32, 4);
BPF_HISTOGRAM(sizes);
struct event_t { u32 pid; u32 seq; char comm[TASK_COMM_LEN]; };
BPF_PERF_OUTPUT(events);
BPF_RINGBUF_OUTPUT(ring, 16);
BPF_ARRAY(seqs, u32, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct key_t key = {.pid = pid};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    struct val_t zero = {}, *v = calls.lookup_or_try_init(&key, &zero);
    if (v) {
        v->calls += 1;
        v->last_ns = bpf_ktime_get_ns();
    }
    u32 slot = 2, *c = per_cpu.lookup(&slot);
    if (c)
        *c += 1;
    int z = 0;
    u32 *seq = seqs.lookup(&z);
    if (!seq)
        return 0;
    struct event_t e = {.pid = pid, .seq = *seq};
    *seq += 1;
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    sizes.increment(bpf_log2l(e.seq + 1));
    events.perf_submit(args, &e, sizeof(e));
    ring.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""


@pytest.fixture
def bpf() -> BPF:
    b = BPF(text=PROGRAM, cflags=target_cflags())
    yield b
    b.cleanup()


def _comm() -> bytes:
    with open("/proc/self/comm", "rb") as f:
        return f.read().strip()[:15]


@pytest.mark.needs_root
def test_a_struct_keyed_table_as_arrays_matches_items(bpf: BPF) -> None:
    for _ in range(5):
        os.getppid()
    keys, values = bpf["calls"].to_numpy()
    assert len(keys) == 1 and keys[0]["pid"] == os.getpid() and keys[0]["comm"] == _comm()
    assert values[0]["calls"] == 5 and values[0]["last_ns"] > 0
    [(k, v)] = bpf["calls"].items()
    assert (k.pid, v.calls, v.last_ns) == (keys[0]["pid"], values[0]["calls"], values[0]["last_ns"])


@pytest.mark.needs_root
def test_a_per_cpu_array_has_a_column_per_cpu(bpf: BPF) -> None:
    for _ in range(9):
        os.getppid()
    keys, values = bpf["per_cpu"].to_numpy()
    assert list(keys) == [0, 1, 2, 3]
    assert values.shape == (4, possible_cpus()) and values.dtype == np.uint32
    assert values[2].sum() == 9 and values[[0, 1, 3]].sum() == 0
    assert list(values[2]) == list(bpf["per_cpu"][2])


@pytest.mark.needs_root
def test_perf_batches_arrive_as_arrays_in_one_callback_per_poll(bpf: BPF) -> None:
    batches: list[np.ndarray] = []
    bpf["events"].open_perf_buffer(batches.append, batch=True)
    for _ in range(50):
        os.getppid()
    while bpf.perf_buffer_poll(200):
        pass
    events = np.concatenate(batches)
    assert len(batches) < 50 and events.dtype == bpf["events"].dtype
    assert sorted(events["seq"]) == list(range(50))
    assert set(events["pid"]) == {os.getpid()} and set(events["comm"]) == {_comm()}


@pytest.mark.needs_root
def test_ring_batches_arrive_as_arrays(bpf: BPF) -> None:
    batches: list[np.ndarray] = []
    bpf["ring"].open_ring_buffer(batches.append, batch=True)
    for _ in range(30):
        os.getppid()
    while bpf.ring_buffer_poll(200):
        pass
    events = np.concatenate(batches)
    assert list(events["seq"]) == list(range(30))  # one ring: in order


@pytest.mark.needs_root
@pytest.mark.parametrize("name", ["events", "ring"])
def test_collect_returns_what_arrives_in_the_time_given(bpf: BPF, name: str) -> None:
    def later() -> None:
        time.sleep(0.3)
        for _ in range(20):
            os.getppid()

    worker = threading.Thread(target=later)
    worker.start()
    started = time.monotonic()
    events = bpf[name].collect(1.5)
    worker.join()
    assert time.monotonic() - started >= 1.4
    assert sorted(events["seq"]) == list(range(20)), events
    assert len(bpf[name].collect(0.2)) == 0


@pytest.mark.needs_root
def test_collect_stops_at_max_events(bpf: BPF) -> None:
    for _ in range(10):
        os.getppid()
    started = time.monotonic()
    events = bpf["ring"].collect(30, max_events=4)
    assert time.monotonic() - started < 10 and list(events["seq"]) == [0, 1, 2, 3]
