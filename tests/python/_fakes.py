"""Test doubles for rbcc's table layer: an in-memory _core.Map, a BPF owner and a core module.

Each is checked against what it stands in for, by mypy (``make lint`` runs it over this file): FakeMap
and FakePerfBuffer against the core's stub (``python/rbcc/_core.pyi``), FakeBPF against the tables'
``TableOwner``. The stub's classes are their base classes for the type checker only: at run time the
core's classes cannot be subclassed, and the fakes need none of their code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rbcc._tables.base import TableOwner
from rbcc._tables.batch import _py_cdata_items, _py_cdata_list
from rbcc.errors import KernelFeatureError

if TYPE_CHECKING:
    from rbcc import _core

    CoreMap = _core.Map
    CorePerfBuffer = _core.PerfBuffer
else:
    CoreMap = CorePerfBuffer = object

HASH, ARRAY, PERF, PERCPU_HASH, PERCPU_ARRAY, STACK, RINGBUF = 1, 2, 4, 5, 6, 7, 27
ARRAY_LIKE = {ARRAY, PERCPU_ARRAY, PERF}
NCPU = 4

TypeDesc = dict[str, Any]  # as the stub's _core.TypeDesc


def int_desc(name: str, size: int, signed: bool = False) -> TypeDesc:
    return {"kind": "int", "name": name, "size": size, "signed": signed}


S32 = int_desc("int", 4, True)
U32 = int_desc("u32", 4)
U64 = int_desc("u64", 8)
CHAR = int_desc("char", 1, True)


def member(name: str, desc: TypeDesc, offset: int) -> TypeDesc:
    return {"name": name, "offset": offset, "bits": 0, "bit_offset": offset * 8, "type": desc}


# struct { u32 dev; u64 slot; } -- 4 bytes of padding after dev
DEV_KEY = {"kind": "struct", "name": "dev_key", "size": 16, "members": [member("dev", U32, 0), member("slot", U64, 8)]}
# struct { char comm[8]; u64 slot; }
COMM_KEY = {
    "kind": "struct",
    "name": "comm_key",
    "size": 16,
    "members": [member("comm", {"kind": "array", "elem": CHAR, "len": 8}, 0), member("slot", U64, 8)],
}
EVENT = {
    "kind": "struct",
    "name": "event",
    "size": 24,
    "members": [
        member("pid", U32, 0),
        member("ts", U64, 8),
        member("comm", {"kind": "array", "elem": CHAR, "len": 8}, 16),
    ],
}


class FakeMap(CoreMap):
    """The _core.Map interface over a dict, with the kernel's array and per-CPU semantics. What it leaves
    out (queues, batch calls but lookup_batch) is not there at run time: a test that needs it adds it."""

    # the stub's read-only properties, plain attributes here so that a test can set them
    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    fd: int
    flags: int
    id: int

    def __init__(
        self,
        map_type: int,
        key_size: int = 4,
        value_size: int = 8,
        max_entries: int = 64,
        key_desc: TypeDesc | None = None,
        value_desc: TypeDesc | None = None,
    ) -> None:
        self.name = "fake"
        self.map_type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.fd = 42
        self.flags = 0
        self.id = 7
        self._key_desc = key_desc
        self._value_desc = value_desc
        # a value, or a per-CPU map's list of them (each CPU's copy padded to 8 bytes, as the kernel has it)
        self.data: dict[bytes, Any] = {}

    def key_type(self) -> TypeDesc | None:
        return self._key_desc

    def value_type(self) -> TypeDesc | None:
        return self._value_desc

    def _index(self, key: bytes) -> int | None:
        if self.map_type not in ARRAY_LIKE:
            return None
        index = int.from_bytes(key, "little")
        return index if index < self.max_entries else -1

    def lookup(self, key: bytes) -> bytes | None:
        assert len(key) == self.key_size
        if self._index(key) == -1:
            return None
        default = bytes(self.value_size) if self._index(key) is not None else None
        value = self.data.get(key, default)
        assert value is None or isinstance(value, bytes)
        return value

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        if self._index(key) == -1:
            return None
        rounded = -(-self.value_size // 8) * 8  # the kernel's per-CPU stride
        default = [bytes(rounded)] * NCPU if self._index(key) is not None else None
        values = self.data.get(key, default)
        assert values is None or isinstance(values, list)
        return values

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        assert len(key) == self.key_size and len(value) == self.value_size
        self.data[key] = value

    def update_percpu(self, key: bytes, values: list[bytes], flags: int = 0) -> None:
        assert len(values) == NCPU and all(len(v) == self.value_size for v in values)
        self.data[key] = [v.ljust(-(-self.value_size // 8) * 8, b"\0") for v in values]

    def delete(self, key: bytes) -> bool:
        if self._index(key) is not None:
            return False  # arrays can't delete (EINVAL)
        return self.data.pop(key, None) is not None

    def lookup_batch(self) -> tuple[bytes, bytes]:
        # as a kernel without batch calls answers: the tables fall back to entry by entry
        raise KernelFeatureError("the fake map has no batch calls")

    def keys(self) -> list[bytes]:
        if self.map_type in ARRAY_LIKE:
            return [i.to_bytes(self.key_size, "little") for i in range(self.max_entries)]
        return list(self.data)


class FakeBPF(TableOwner):
    """The owner a table reports its buffers to, recording them."""

    def __init__(self, event_desc: TypeDesc | None = EVENT) -> None:
        self.event_desc = event_desc
        self.perf_buffers: dict[str, _core.PerfBuffer] = {}
        self.ring_buffers: dict[str, tuple[_core.Map, Callable[..., Any], Any, Any]] = {}

    def _event_type(self, name: str) -> TypeDesc | None:
        return self.event_desc

    def _register_perf_buffer(self, name: str, buffer: _core.PerfBuffer) -> None:
        self.perf_buffers[name] = buffer

    def _register_ring_buffer(
        self,
        name: str,
        core_map: _core.Map,
        callback: Callable[..., Any],
        record_size: int | None = None,
        ctx: Any = None,
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> None:
        self.ring_buffers[name] = (core_map, callback, ctx, on_error)


class FakePerfBuffer(CorePerfBuffer):
    """A perf buffer that only keeps what it was opened with."""

    def __init__(
        self,
        map: _core.Map,
        callback: Callable[[int, int, int], Any] | Callable[[bytes], Any],
        lost_callback: Callable[[int, int], None] | None,
        page_cnt: int,
        record_size: int | None = None,
        wakeup_events: int = 1,
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> None:
        self.map, self.callback, self.lost_callback, self.page_cnt = map, callback, lost_callback, page_cnt
        self.record_size, self.wakeup_events, self.on_error = record_size, wakeup_events, on_error


class FakeCore:
    """The parts of the core module the tables call, for tests without it: buffers are recorded, batch
    buffers become ctypes objects in Python (``tests/tables/conftest.py`` puts it in the core's place)."""

    PerfBuffer = FakePerfBuffer
    cdata_list = staticmethod(_py_cdata_list)
    cdata_items = staticmethod(_py_cdata_items)

    @staticmethod
    def num_possible_cpus() -> int:
        return NCPU
