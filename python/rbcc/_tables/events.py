"""Event tables: perf buffers (``PerfEventArray``) and ring buffers (``RingBuf``), whose records the core
hands to the user's callbacks as they drain, or to numpy in batches; and what becomes of an exception a
callback raises."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import BPFError
from . import arrays
from .base import BYTES_LIKE, ArrayBase, CType, Table, decode
from .types import from_desc

__all__ = ["FileDesc", "PerfEventArray", "RingBuf"]


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
        # a ctypes pointer or c_void_p; NULL is a ValueError, as bcc's cast to the event's pointer gives
        address = ctypes.cast(data, ctypes.c_void_p).value
        if not address:
            raise ValueError("NULL pointer access")
        return ctype.from_address(address)

    @property
    def dtype(self) -> Any:
        """The numpy dtype of one event (the type the BPF program submits; see ``rbcc._tables.arrays``)."""
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

        import numpy as np

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
        from .. import _core  # on first use: the tables import without the compiled extension

        lost = _lost_trampoline(lost_cb) if lost_cb is not None else None
        if batch:
            trampoline: Callable[..., Any] = self._batch_trampoline(callback)  # type: ignore[arg-type]
            size = self.dtype.itemsize
            buffer = _core.PerfBuffer(self.map, trampoline, lost, page_cnt, size, wakeup_events)
        else:
            # the core calls the callback itself, with bcc's (cpu, address, size)
            trampoline = callback
            buffer = _core.PerfBuffer(self.map, callback, lost, page_cnt, None, wakeup_events, _callback_failed)
        self._cbs["perf"] = (trampoline, lost, buffer)
        self.bpf._register_perf_buffer(self._name, buffer)

    def _open_batches(self, callback: Callable[[Any], Any]) -> Any:
        self.open_perf_buffer(callback, page_cnt=64, batch=True)  # type: ignore[arg-type]
        return self._cbs["perf"][2]

    def open_perf_event(self, typ: int, config: int, pid: int = -1) -> None:
        """Open a counting perf event (``PerfType``, config) on every online CPU, in the slot of that CPU,
        for BPF_PERF_ARRAY's ``perf_read``/``perf_counter_value`` (which read the running CPU's slot)."""
        from .. import _core
        from ..utils import get_online_cpus

        for cpu in get_online_cpus():
            fd = _core.perf_event_open(typ, config, pid, cpu)
            try:
                self[ctypes.c_int(cpu)] = ctypes.c_uint32(fd)
            finally:
                # The map holds its own reference to the event: ours can go.
                os.close(fd)


class FileDesc:
    """A file descriptor closed when this object is (bcc's ``table.FileDesc``): ``clean_up()``, the end of a
    ``with`` block, or collection."""

    def __init__(self, fd: int | None) -> None:
        if fd is None or fd < 0:
            raise BPFError(f"invalid file descriptor: {fd}")
        self.fd: int | None = fd

    def clean_up(self) -> None:
        if self.fd is not None and self.fd >= 0:
            os.close(self.fd)
        self.fd = None

    def __enter__(self) -> FileDesc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clean_up()

    def __del__(self) -> None:
        self.clean_up()


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
        from .. import _core

        ring = _core.RingBuffer()
        trampoline = self._batch_trampoline(callback)
        ring.add(self.map, trampoline, self.dtype.itemsize)
        self._cbs["collect"] = (trampoline, ring)
        return ring
