"""Stack trace tables (BPF_STACK_TRACE, BPF_STACK_TRACE_BUILDID): stack ids to their frames."""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .base import CType, Table
from .types import from_desc

if TYPE_CHECKING:
    from .. import _core

__all__ = ["BuildIdFrame", "StackTrace"]


class BuildIdFrame(ctypes.Structure):
    """One frame of a BPF_STACK_TRACE_BUILDID stack: the file's build id and the offset in it."""

    _fields_ = [("status", ctypes.c_int32), ("build_id", ctypes.c_ubyte * 20), ("offset", ctypes.c_uint64)]

    EMPTY, VALID, IP = 0, 1, 2  # status: no frame, (build id, offset), or only an address (``offset``)


class StackTrace(Table):
    """Stack ids to arrays of up to MAX_DEPTH instruction pointers, innermost first, zero-terminated.

    A BPF_STACK_TRACE_BUILDID map holds ``BuildIdFrame``s instead, ended by an EMPTY one."""

    MAX_DEPTH = 127
    # bcc's names: the map flag of a build-id stack map, and a BuildIdFrame's statuses
    BPF_F_STACK_BUILD_ID = 1 << 5
    BPF_STACK_BUILD_ID_EMPTY = BuildIdFrame.EMPTY
    BPF_STACK_BUILD_ID_VALID = BuildIdFrame.VALID
    BPF_STACK_BUILD_ID_IP = BuildIdFrame.IP

    class StackWalker:
        """bcc's iterator over one stack's frames: addresses up to the first 0 (each ``resolve(addr)`` if
        given), or a build-id stack's frames up to the first EMPTY one (with BPF_F_STACK_BUILD_ID in
        ``flags``)."""

        def __init__(self, stack: Any, flags: int, resolve: Callable[[Any], Any] | None = None) -> None:
            self.stack = stack
            self.flags = flags
            self.resolve = resolve
            self.n = -1
            self._frames = getattr(stack, "ip", getattr(stack, "trace", stack))

        def __iter__(self) -> StackTrace.StackWalker:
            return self

        def __next__(self) -> Any:
            self.n += 1
            if self.n >= len(self._frames):
                raise StopIteration()
            frame = self._frames[self.n]
            if self.flags & StackTrace.BPF_F_STACK_BUILD_ID or isinstance(frame, BuildIdFrame):
                if frame.status == BuildIdFrame.EMPTY:
                    raise StopIteration()
            elif frame == 0:
                raise StopIteration()
            return self.resolve(frame) if self.resolve is not None else frame

        def next(self) -> Any:  # bcc's Python 2 spelling
            return self.__next__()

    @staticmethod
    def _default_leaf(map: _core.Map) -> CType:
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
        return StackTrace.StackWalker(frames, 0, resolve)
