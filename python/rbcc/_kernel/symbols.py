"""Symbols the way bcc's Python API gives them: ``SymbolCache`` (a process's, or the kernel's), and the
text ``BPF.sym``/``BPF.ksym`` make of what it resolves, as bytes: ``name``, ``name+0x1a``,
``name [module]``, ``[unknown]`` where no symbol covers the address. The core resolves (src/symbolize/):
symbol tables, split debug files, MiniDebugInfo, perf maps, kallsyms and its modules, build ids.
"""

from __future__ import annotations

import os
from typing import Any

from .. import _core
from ..utils import as_str as _s

Text = str | bytes
Resolved = tuple[bytes | None, int, bytes | None]

# A BPF_STACK_TRACE_BUILDID frame's status: only a VALID one holds (build id, file offset).
_BUILD_ID_VALID = 1


class SymbolCache:
    """bcc's symbol cache of process ``pid``, or of the kernel for any ``pid`` below zero.

    ``resolve(addr, demangle)`` is ``(name, offset into it, module)`` as bytes; for an address no
    symbol covers, ``(None, offset into the module, module)`` when a file is mapped there, else
    ``(None, addr, None)``. ``resolve_name(module, name)`` is the address, or -1.
    """

    def __init__(self, pid: int) -> None:
        self.pid = -1 if pid < 0 else pid
        # bcc's handle on libbcc's cache, which scripts only pass back to bcc; the core's cache is per
        # thread and process, so the handle is this object itself
        self.cache: object = self

    def resolve(self, addr: int, demangle: bool) -> Resolved:
        return lookup(self.pid, addr, demangle, True)

    def resolve_name(self, module: Text | None, name: Text) -> int:
        if self.pid < 0:
            addr = _core.ksymname(_s(name))  # kallsyms: the module is not asked
        elif module is None:
            return -1
        else:
            addr = _core.usymname(self.pid, _s(module), _s(name))
        return -1 if addr is None else addr


def lookup(pid: int, addr: int, demangle: bool, want_module: bool) -> Resolved:
    """``SymbolCache(pid).resolve(addr, demangle)``; the module of a kernel symbol or of an unknown
    address only ``want_module`` (finding those reads kallsyms, or the process's map)."""
    if pid < 0:
        found = _core.ksym(addr, want_module)  # kallsyms' names are not demangled, in bcc either
    else:
        found = _core.usym(pid, addr, demangle)
    if found is not None:
        name, offset, module = found
        return name.encode(), offset, module.encode()
    if want_module and pid >= 0:
        where = _core.user_module(pid, addr)
        if where is not None and where[1]:  # bcc: a module, and an offset in it
            return None, where[1], where[0].encode()
    return None, addr, None


def is_build_id_frame(frame: Any) -> bool:
    """A frame of a BPF_STACK_TRACE_BUILDID map (``rbcc.table.BuildIdFrame``, or the struct BTF
    describes), which ``BPF.sym`` resolves by its build id instead of a process."""
    return not isinstance(frame, int) and all(hasattr(frame, f) for f in ("status", "build_id", "offset"))


def build_id_lookup(frame: Any) -> Resolved:
    """A build-id frame's symbol, through the files ``BPF.add_module`` registered (or a debug
    directory's ``.build-id/``). A frame the kernel could only record as an address has none."""
    if frame.status != _BUILD_ID_VALID:
        return None, 0, None
    found = _core.build_id_sym(bytes(frame.build_id), frame.offset)
    if found is None:
        return None, frame.offset, None
    name, offset, module = found
    return name.encode(), offset, module.encode()


def add_module(modname: Text) -> None:
    """bcc's ``BPF.add_module``: register an ELF file (a library or executable) under its build id;
    one without a build id is ignored, as bcc ignores it."""
    _core.add_build_id_module(_s(modname))


def text(resolved: Resolved, show_module: bool, show_offset: bool) -> bytes:
    """bcc's symbol text: ``name[+0xoff] [module]``, ``[unknown]`` without a name (the module still
    shown when known, the offset never)."""
    name, offset, module = resolved
    out = (name or b"[unknown]") + (b"+0x%x" % offset if show_offset and name is not None else b"")
    if show_module and module is not None:
        out += b" [%s]" % os.path.basename(module)
    return out


def inlined(addr: int, pid: int) -> list[bytes]:
    """The functions DWARF says are inlined at ``addr`` in process ``pid``, innermost first."""
    if pid < 0:
        return []
    return [n.encode() for n in reversed(_core.usym_inlined(pid, addr))]
