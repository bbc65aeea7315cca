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
        return _walk_frames(frames, resolve)


def _walk_frames(frames: Any, resolve: Callable[[int], Any] | None) -> Iterator[Any]:
    for addr in frames:
        if addr == 0:
            return
        yield resolve(addr) if resolve is not None else addr
