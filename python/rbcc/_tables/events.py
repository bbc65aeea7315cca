"""bcc-compatible map tables over the Rust core's map handles.

``BPF["name"]`` returns one of these: the same class names and behaviour as
bcc's tables, chosen by ``table_for`` from the map's BPF_MAP_TYPE_*. Hash and
array tables live in ``rbcc.tablebase``, the special-purpose kinds in
``rbcc.tablekinds``; this module adds the per-CPU, stack trace and event tables
and exports them all.

The compiled core is imported lazily, only where a buffer has to be opened
or the CPU count is needed, so this module imports without the extension.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterator
from functools import reduce
from typing import Any

from . import arrays
from .errors import BPFError
from .tablebase import (
    BYTES_LIKE,
    Array,
    ArrayBase,
    CType,
    HashTable,
    HistogramTable,
    LruHash,
    MapHandle,
    Table,
    TableBase,
    decode,
)
from .tablebatch import Layout
from .tablekinds import (
    CgroupArray,
    CgroupStorage,
    CgrpStorage,
    CpuMap,
    DevMap,
    DevMapHash,
    InodeStorage,
    LpmTrie,
    MapInMapArray,
    MapInMapHash,
    ProgArray,
    QueueStack,
    SkStorage,
    SockHash,
    SockMap,
    TaskStorage,
    XskMap,
)
from .types import from_desc

__all__ = [
    "Array",
    "ArrayBase",
    "CgroupArray",
    "CgroupStorage",
    "CgrpStorage",
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "HashTable",
    "HistogramTable",
    "InodeStorage",
    "LpmTrie",
    "LruHash",
    "LruPerCpuHash",
    "MapHandle",
    "MapInMapArray",
    "MapInMapHash",
    "PerCpuArray",
    "PerCpuCgroupStorage",
    "PerCpuHash",
    "PerfEventArray",
    "ProgArray",
    "QueueStack",
    "RingBuf",
    "SkStorage",
    "SockHash",
    "SockMap",
    "StackTrace",
    "Table",
    "TableBase",
    "TableLike",
    "TaskStorage",
    "XskMap",
    "get_table_type_name",
    "map_type_name",
    "table_for",
]


BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_STACK_TRACE = 7
BPF_MAP_TYPE_CGROUP_ARRAY = 8
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
BPF_MAP_TYPE_DEVMAP = 14
BPF_MAP_TYPE_SOCKMAP = 15
BPF_MAP_TYPE_CPUMAP = 16
BPF_MAP_TYPE_XSKMAP = 17
BPF_MAP_TYPE_SOCKHASH = 18
BPF_MAP_TYPE_CGROUP_STORAGE = 19
BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20
BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21
BPF_MAP_TYPE_QUEUE = 22
BPF_MAP_TYPE_STACK = 23
BPF_MAP_TYPE_SK_STORAGE = 24
BPF_MAP_TYPE_DEVMAP_HASH = 25
BPF_MAP_TYPE_STRUCT_OPS = 26
BPF_MAP_TYPE_RINGBUF = 27
BPF_MAP_TYPE_INODE_STORAGE = 28
BPF_MAP_TYPE_TASK_STORAGE = 29
BPF_MAP_TYPE_BLOOM_FILTER = 30
BPF_MAP_TYPE_USER_RINGBUF = 31
BPF_MAP_TYPE_CGRP_STORAGE = 32
BPF_MAP_TYPE_ARENA = 33

map_type_name: dict[int, str] = {
    value: name.removeprefix("BPF_MAP_TYPE_")
    for name, value in globals().items()
    if name.startswith("BPF_MAP_TYPE_") and isinstance(value, int)
}


def get_table_type_name(ttype: int) -> str:
    return map_type_name.get(ttype, "<unknown>")


def _core_module() -> Any:
    from . import _core  # lazy: everything else here must import without the compiled extension

    return _core


def _num_possible_cpus() -> int:
    return int(_core_module().num_possible_cpus())


class _PerCpu(Table):
    """Per-CPU maps: a value is ``sLeaf * total_cpu``, one element per possible CPU, as in bcc."""

    def __init__(
        self,
        bpf: Any,
        map: MapHandle,
        name: str,
        keytype: CType | None = None,
        leaftype: CType | None = None,
        reducer: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        super().__init__(bpf, map, name, keytype, leaftype)
        self.reducer = reducer
        self.sLeaf: CType = self.Leaf
        self.total_cpu = _num_possible_cpus()
        self.Leaf = self.sLeaf * self.total_cpu

    def _fetch(self, key: bytes) -> Any | None:
        per_cpu = self.map.lookup_percpu(key)
        return None if per_cpu is None else self._join_cpus(per_cpu)

    def _per_cpu_bytes(self, leaf: Any) -> list[bytes]:
        raw = bytes(self._as_leaf(leaf))
        size = ctypes.sizeof(self.sLeaf)
        return [raw[i * size : (i + 1) * size] for i in range(self.total_cpu)]

    def _store(self, key: bytes, leaf: Any, flags: int) -> None:
        self.map.update_percpu(key, self._per_cpu_bytes(leaf), flags)

    def _encode_batch_value(self, leaf: Any) -> bytes:
        # In a batch buffer every CPU's copy starts 8-byte aligned.
        stride = -(-ctypes.sizeof(self.sLeaf) // 8) * 8
        return b"".join(raw.ljust(stride, b"\0") for raw in self._per_cpu_bytes(leaf))

    def _value_layout(self, stride: int) -> Layout:
        # every CPU's copy starts 8-byte aligned in the buffer; the Leaf array has them end to end
        per_cpu = stride // self.total_cpu
        return (stride, min(ctypes.sizeof(self.sLeaf), per_cpu), self.total_cpu, per_cpu)

    def _presents_values(self) -> bool:
        return self.reducer is not None

    def _join_cpus(self, per_cpu: list[bytes]) -> Any:
        size = ctypes.sizeof(self.sLeaf)
        # The kernel rounds each CPU's copy up to 8 bytes; only the value's own bytes matter.
        return decode(b"".join(raw[:size].ljust(size, b"\0") for raw in per_cpu[: self.total_cpu]), self.Leaf)

    def _present(self, value: Any) -> Any:
        return reduce(self.reducer, value) if self.reducer is not None else value

    def getvalue(self, key: Any) -> Any:
        """The per-CPU array at ``key``, never reduced."""
        value = self._fetch(bytes(self._as_key(key)))
        if value is None:
            raise KeyError(key)
        return value

    def _check_scalar(self, what: str) -> None:
        if issubclass(self.sLeaf, (ctypes.Structure, ctypes.Union)):
            raise IndexError(f"Leaf must be an integer type for default {what} functions")

    def sum(self, key: Any) -> Any:
        self._check_scalar("sum")
        return self.sLeaf(sum(self.getvalue(key)))

    def max(self, key: Any) -> Any:
        self._check_scalar("max")
        return self.sLeaf(max(self.getvalue(key)))

    def average(self, key: Any) -> float:
        return self.sum(key).value / self.total_cpu


class PerCpuHash(_PerCpu, HashTable):
    pass


class LruPerCpuHash(PerCpuHash):
    pass


class PerCpuArray(_PerCpu, ArrayBase):
    _zeroes_on_delete = True

    def __delitem__(self, key: Any) -> None:
        self.clearitem(key)


class PerCpuCgroupStorage(_PerCpu, CgroupStorage):
    """CgroupStorage with one value per CPU."""


class BuildIdFrame(ctypes.Structure):
    """One frame of a BPF_STACK_TRACE_BUILDID stack: the file's build id and the offset in it."""

    _fields_ = [("status", ctypes.c_int32), ("build_id", ctypes.c_ubyte * 20), ("offset", ctypes.c_uint64)]

    EMPTY, VALID, IP = 0, 1, 2  # status: no frame, (build id, offset), or only an address (``offset``)


class StackTrace(Table):
    """Stack ids to arrays of up to MAX_DEPTH instruction pointers, innermost first, zero-terminated.

    A BPF_STACK_TRACE_BUILDID map holds ``BuildIdFrame``s instead, ended by an EMPTY one."""

    MAX_DEPTH = 127

    @staticmethod
    def _default_leaf(map: MapHandle) -> CType:
        desc = map.value_type()
        if desc is not None:
            return from_desc(desc)
        if map.value_size == StackTrace.MAX_DEPTH * ctypes.sizeof(BuildIdFrame):
            return BuildIdFrame * StackTrace.MAX_DEPTH
        return ctypes.c_uint64 * (map.value_size // 8)

    def walk(self, stack_id: int, resolve: Callable[[int], Any] | None = None) -> Iterator[Any]:
        """The stack's addresses (or ``resolve(addr)``), or its BuildIdFrames; KeyError at once if the id
        is unknown."""
        frames = self[stack_id]
        # bcc's value is a struct with an ``ip`` array; BTF may give the array itself.
        frames = getattr(frames, "ip", frames)
        if len(frames) and isinstance(frames[0], BuildIdFrame):
            return (f for f in frames if f.status != BuildIdFrame.EMPTY)
        return _walk_frames(frames, resolve)


def _walk_frames(frames: Any, resolve: Callable[[int], Any] | None) -> Iterator[Any]:
    for addr in frames:
        if addr == 0:
            return
        yield resolve(addr) if resolve is not None else addr


def _call_user(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a callback the core does not run itself (lost-record counts, numpy batches), with the same
    handling of its exceptions as the core gives a per-record callback (``_callback_failed``)."""
    try:
        return fn(*args)
    except Exception as e:
        _callback_failed(fn, e)
    return None


def _callback_failed(fn: Callable[..., Any], exc: BaseException) -> None:
    """What becomes of an Exception an event callback raised. As in bcc, where callbacks run through
    ctypes, it is printed and the events after it are still delivered: one bad record does not end a
    tool. SystemExit and KeyboardInterrupt (not Exceptions) never come here: they end the poll."""
    if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
        # As bcc: the reader of our output went away (`tool | head`), so end quietly.
        sys.exit()
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        count = _failures[fn] = _failures.get(fn, 0) + 1
    except TypeError:  # a callable that cannot be weakly referenced: counted by name
        count = _failures_by_name[name] = _failures_by_name.get(name, 0) + 1
    if count <= _TRACEBACKS_SHOWN:
        print(f"Exception in event callback {name} (ignored; polling goes on):", file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        if count == _TRACEBACKS_SHOWN:
            print(f"(further exceptions in {name} are counted, and summed up at 10, 100, 1000, ...)", file=sys.stderr)
    elif str(count).strip("0") == "1":
        last = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        print(f"Exception in event callback {name}: {count} so far (the last: {last})", file=sys.stderr)


# A callback that fails on every record would print a traceback per record: thousands a second.
_TRACEBACKS_SHOWN = 3
_failures: weakref.WeakKeyDictionary[Callable[..., Any], int] = weakref.WeakKeyDictionary()
_failures_by_name: dict[str, int] = {}


def _lost_trampoline(lost_cb: Callable[[int], Any]) -> Callable[[int, int], None]:
    def lost(cpu: int, count: int) -> None:
        _call_user(lost_cb, count)

    return lost


class _Events(Table):
    """Event sources: ``event(data)`` decodes a record with the type the BPF program submits."""

    _event_class: CType | None = None

    def _event_ctype(self) -> CType:
        if self._event_class is None:
            desc = self.bpf._event_type(self._name)
            if desc is None:
                raise BPFError(
                    f"could not determine the event type of {self._name!r} from the BPF program; "
                    "declare it in Python and cast the data yourself: "
                    "ctypes.cast(data, ctypes.POINTER(MyEvent)).contents"
                )
            self._event_class = from_desc(desc)
        return self._event_class

    def event(self, data: Any) -> Any:
        """The event at ``data`` as a ctypes object: at the callback's address (an int, as bcc passes it;
        the object reads the record in place, so only during the callback), or copied from bytes."""
        cls = self._event_class
        # the per-record path of every event tool: one attribute read and a C call
        if cls is not None and type(data) is int and data:
            return cls.from_address(data)
        return self._decode_event(data)

    def _decode_event(self, data: Any) -> Any:
        ctype = self._event_ctype()
        if isinstance(data, BYTES_LIKE):
            return decode(bytes(data), ctype)
        if isinstance(data, int) and data:
            return ctype.from_address(data)
        # a ctypes pointer or c_void_p (NULL raises ValueError here, as in bcc)
        return ctypes.cast(data, ctypes.POINTER(ctype)).contents

    @property
    def dtype(self) -> Any:
        """The numpy dtype of one event (the type the BPF program submits; see ``rbcc.arrays``)."""
        return arrays.dtype_of(self._event_ctype())

    def _batch_trampoline(self, callback: Callable[[Any], Any]) -> Callable[[bytes], int]:
        dtype = self.dtype

        def deliver(data: bytes) -> int:
            _call_user(callback, arrays.records(data, dtype))
            return 0

        return deliver

    def _open_batches(self, callback: Callable[[Any], Any]) -> Any:
        """Open this buffer in batch mode for ``callback(events)``; the core object to poll."""
        raise NotImplementedError

    def collect(self, seconds: float, max_events: int | None = None) -> Any:
        """The events that arrive in the next ``seconds`` (or until ``max_events`` have), as one numpy
        array of ``dtype``: this buffer is (re)opened in batch mode for it. Ctrl-C (a notebook's
        interrupt) ends it early with what arrived so far."""
        import time

        np = arrays._np()
        batches: list[Any] = []
        got = 0

        def keep(events: Any) -> None:
            nonlocal got
            batches.append(events)
            got += len(events)

        buffer = self._open_batches(keep)
        deadline = time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0 and (max_events is None or got < max_events):
                buffer.poll(max(1, min(100, int(left * 1000))))
        except KeyboardInterrupt:
            pass
        events = np.concatenate(batches) if batches else np.empty(0, self.dtype)
        return events if max_events is None else events[:max_events]


class PerfEventArray(_Events, ArrayBase):
    def __delitem__(self, key: Any) -> None:
        # Slots hold perf fds the core manages; a missing one is not an error, as in bcc.
        try:
            super().__delitem__(key)
        except KeyError:
            pass

    def open_perf_buffer(
        self,
        callback: Callable[[int, int, int], Any],
        page_cnt: int = 8,
        lost_cb: Callable[[int], Any] | None = None,
        wakeup_events: int = 1,
        *,
        batch: bool = False,
    ) -> None:
        """Deliver each record as ``callback(cpu, data, size)``; lost records as ``lost_cb(count)``.
        With ``batch=True``, ``callback(events)`` gets every record of a poll at once, as a numpy array
        of ``dtype`` (records from all CPUs, without their CPU numbers).

        A poll wakes once a CPU has ``wakeup_events`` records waiting (as in bcc): more than 1 costs
        fewer wakeups at high rates, and a poll that times out still delivers what is waiting.
        """
        if page_cnt <= 0 or page_cnt & (page_cnt - 1):
            raise BPFError("Perf buffer page_cnt must be a power of two")
        if wakeup_events < 1:
            raise BPFError("Perf buffer wakeup_events must be at least 1")
        lost = _lost_trampoline(lost_cb) if lost_cb is not None else None
        core = _core_module()
        if batch:
            trampoline: Callable[..., Any] = self._batch_trampoline(callback)  # type: ignore[arg-type]
            size = self.dtype.itemsize
            buffer = core.PerfBuffer(self.map, trampoline, lost, page_cnt, size, wakeup_events)
        else:
            # the core calls the callback itself, with bcc's (cpu, address, size)
            trampoline = callback
            buffer = core.PerfBuffer(self.map, callback, lost, page_cnt, None, wakeup_events, _callback_failed)
        self._cbs["perf"] = (trampoline, lost, buffer)
        self.bpf._register_perf_buffer(self._name, buffer)

    def _open_batches(self, callback: Callable[[Any], Any]) -> Any:
        self.open_perf_buffer(callback, page_cnt=64, batch=True)  # type: ignore[arg-type]
        return self._cbs["perf"][2]

    def open_perf_event(self, typ: int, config: int, pid: int = -1) -> None:
        """Open a counting perf event (``PerfType``, config) on every online CPU, in the slot of that CPU,
        for BPF_PERF_ARRAY's ``perf_read``/``perf_counter_value`` (which read the running CPU's slot)."""
        from .utils import get_online_cpus

        core = _core_module()
        for cpu in get_online_cpus():
            fd = core.perf_event_open(typ, config, pid, cpu)
            try:
                self[ctypes.c_int(cpu)] = ctypes.c_uint32(fd)
            finally:
                # The map holds its own reference to the event: ours can go.
                os.close(fd)


class RingBuf(_Events):
    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def open_ring_buffer(
        self, callback: Callable[[Any, int, int], Any], ctx: Any = None, *, batch: bool = False
    ) -> None:
        """Deliver each record as ``callback(ctx, data, size)``; poll with the BPF object's ring_buffer_poll.
        With ``batch=True``, ``callback(events)`` gets every record of a poll at once, as a numpy array
        of ``dtype``."""
        if batch:
            trampoline = self._batch_trampoline(callback)  # type: ignore[arg-type]
            self._cbs["ring"] = trampoline
            self.bpf._register_ring_buffer(self._name, self.map, trampoline, self.dtype.itemsize)
            return
        # the core calls the callback itself, with bcc's (ctx, address, size)
        self._cbs["ring"] = callback
        self.bpf._register_ring_buffer(self._name, self.map, callback, ctx=ctx, on_error=_callback_failed)

    def _open_batches(self, callback: Callable[[Any], Any]) -> Any:
        # a manager of its own, so collect() drains this ring buffer only
        ring = _core_module().RingBuffer()
        trampoline = self._batch_trampoline(callback)
        ring.add(self.map, trampoline, self.dtype.itemsize)
        self._cbs["collect"] = (trampoline, ring)
        return ring


TableLike = Table | QueueStack  # what BPF[name] returns: QueueStack is not a mapping, as in bcc

_CLASSES: dict[int, type[Table]] = {
    BPF_MAP_TYPE_HASH: HashTable,
    BPF_MAP_TYPE_ARRAY: Array,
    BPF_MAP_TYPE_PROG_ARRAY: ProgArray,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY: PerfEventArray,
    BPF_MAP_TYPE_PERCPU_HASH: PerCpuHash,
    BPF_MAP_TYPE_PERCPU_ARRAY: PerCpuArray,
    BPF_MAP_TYPE_STACK_TRACE: StackTrace,
    BPF_MAP_TYPE_CGROUP_ARRAY: CgroupArray,
    BPF_MAP_TYPE_LRU_HASH: LruHash,
    BPF_MAP_TYPE_LRU_PERCPU_HASH: LruPerCpuHash,
    BPF_MAP_TYPE_LPM_TRIE: LpmTrie,
    BPF_MAP_TYPE_ARRAY_OF_MAPS: MapInMapArray,
    BPF_MAP_TYPE_HASH_OF_MAPS: MapInMapHash,
    BPF_MAP_TYPE_DEVMAP: DevMap,
    BPF_MAP_TYPE_SOCKMAP: SockMap,
    BPF_MAP_TYPE_CPUMAP: CpuMap,
    BPF_MAP_TYPE_XSKMAP: XskMap,
    BPF_MAP_TYPE_SOCKHASH: SockHash,
    BPF_MAP_TYPE_CGROUP_STORAGE: CgroupStorage,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: PerCpuCgroupStorage,
    BPF_MAP_TYPE_SK_STORAGE: SkStorage,
    BPF_MAP_TYPE_DEVMAP_HASH: DevMapHash,
    BPF_MAP_TYPE_RINGBUF: RingBuf,
    BPF_MAP_TYPE_INODE_STORAGE: InodeStorage,
    BPF_MAP_TYPE_TASK_STORAGE: TaskStorage,
    BPF_MAP_TYPE_CGRP_STORAGE: CgrpStorage,
}


def table_for(
    bpf: Any,
    map: MapHandle,
    name: str,
    keytype: CType | None = None,
    leaftype: CType | None = None,
    reducer: Callable[[Any, Any], Any] | None = None,
) -> TableLike:
    """The table object for ``map``, its class chosen by the map's type.

    ``keytype``/``leaftype`` override the types from BTF (bcc's ``get_table(name, keytype, leaftype)``);
    ``reducer`` folds per-CPU values and is ignored for other maps, as in bcc.
    """
    if map.map_type in (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK):
        return QueueStack(bpf, map, name, leaftype)
    cls = _CLASSES.get(map.map_type)
    if cls is None:
        kind = get_table_type_name(map.map_type)
        raise BPFError(f"map {name!r} has type {map.map_type} ({kind}), which rbcc's tables do not support")
    if issubclass(cls, _PerCpu):
        return cls(bpf, map, name, keytype, leaftype, reducer=reducer)
    return cls(bpf, map, name, keytype, leaftype)
