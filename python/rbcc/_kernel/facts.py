"""What the running kernel and the system's binaries offer, asked the way bcc scripts ask
(``BPF.tracepoint_exists``, ``BPF.support_kfunc``, ``BPF.find_library``, ``BPF.ksym``...): static
answers that need no loaded program. ``BPF`` inherits them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Any

from .. import _core
from .._probes.uprobes import resolve_binary
from ..utils import as_str as _s
from . import symbols
from .symbols import SymbolCache

_COLD = re.compile(r"\.cold(\.\d+)?$")

Text = str | bytes


class KernelFacts:
    _syscall_prefixes = ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "sys_")

    @staticmethod
    def _kernel_functions(pattern: str) -> list[str]:
        """Kernel functions matching ``pattern`` (``re.match``, as bcc) that kprobes may attach to: the
        tracer's available_filter_functions when tracefs has it, else kallsyms' text symbols."""
        regex = re.compile(pattern)
        names: dict[str, None] = {}
        try:
            with open(os.path.join(_core.tracefs(), "available_filter_functions")) as f:
                candidates = [line.split()[0] for line in f if line.strip()]
        except OSError:
            with open("/proc/kallsyms") as f:
                candidates = [p[2] for p in (line.split() for line in f) if len(p) >= 3 and p[1] in "tTwW"]
        for name in candidates:
            # not probeable: the kprobe machinery's own, perf's, and the cold parts the compiler splits off
            # (foo.cold); other suffixed clones (foo.isra.0) are real functions that scripts probe
            skip = name.startswith(("__kprobes", "_kbl_addr_", "__perf", "perf_")) or _COLD.search(name) is not None
            if regex.match(name) and not skip:
                names[name] = None
        return list(names)

    @staticmethod
    def support_lsm() -> bool:
        """Whether this kernel loads and attaches BPF LSM programs (probed)."""
        return _core.has_lsm()

    @staticmethod
    def support_kfunc() -> bool:
        """Whether this kernel loads and attaches fentry/fexit programs (probed, not read from its version)."""
        return _core.has_fentry()

    # -- kernel facts ----------------------------------------------------------------------------

    @staticmethod
    def get_tracepoints(tp_re: Text = "") -> list[str]:
        """Tracepoints as "category:event", those ``tp_re`` matches (``re.match``, as bcc) if given."""
        events = os.path.join(_core.tracefs(), "events")
        regex = re.compile(_s(tp_re)) if tp_re else None
        found = []
        for category in sorted(os.listdir(events)):
            cdir = os.path.join(events, category)
            if not os.path.isdir(cdir):
                continue
            for event in sorted(os.listdir(cdir)):
                name = f"{category}:{event}"
                if os.path.isdir(os.path.join(cdir, event)) and (regex is None or regex.match(name)):
                    found.append(name)
        return found

    @staticmethod
    def tracepoint_exists(category: Text, event: Text) -> bool:
        return os.path.exists(os.path.join(_core.tracefs(), "events", _s(category), _s(event), "format"))

    @staticmethod
    def support_raw_tracepoint() -> bool:
        return True

    @staticmethod
    def support_raw_tracepoint_in_module() -> bool:
        """Raw tracepoints of kernel modules (the kernel exports bpf_trace_modules where it has them)."""
        return _core.ksymname("bpf_trace_modules") is not None

    @staticmethod
    def get_probe_limit() -> int:
        """How many probes a tool may open at once: $BCC_PROBE_LIMIT, else 1000 (bcc's default)."""
        limit = os.environ.get("BCC_PROBE_LIMIT", "")
        return int(limit) if limit.isdigit() else 1000

    @classmethod
    def generate_auto_includes(cls, program_words: Any) -> str:
        """bcc adds `#include`s for the kernel types a generated program names; with the whole kernel's
        types always in scope (vmlinux.h), none is needed."""
        return ""

    @staticmethod
    def get_kprobe_functions(event_re: Text) -> set[bytes]:
        if not _core.has_kprobes():
            return set()
        return {n.encode() for n in KernelFacts._kernel_functions(_s(event_re))}

    @classmethod
    def get_syscall_prefix(cls) -> bytes:
        for prefix in cls._syscall_prefixes:
            if _core.ksymname(prefix + "bpf") is not None:
                return prefix.encode()
        return b"sys_"

    @classmethod
    def get_syscall_fnname(cls, name: Text) -> bytes:
        return cls.get_syscall_prefix() + _s(name).encode()

    @classmethod
    def fix_syscall_fnname(cls, name: Text) -> bytes:
        """A syscall's function named with any prefix (``sys_clone``) as this kernel names it
        (``__x64_sys_clone``); any other name as it is."""
        raw = _s(name)
        for prefix in cls._syscall_prefixes:
            if raw.startswith(prefix):
                return cls.get_syscall_fnname(raw[len(prefix) :])
        return raw.encode()

    @classmethod
    def _kprobe_event(cls, name: str) -> str:
        """The function a kprobe on ``name`` attaches to: bcc's ``sys_NAME`` (``kprobe__sys_NAME``), which
        this kernel does not have, is the syscall's function it has (``__x64_sys_NAME`` since 4.17 on x86).
        A name kallsyms has stays itself, as event_re's matches do, so detach_kprobe finds either."""
        if _core.ksymname(name) is not None:
            return name
        fixed = cls.fix_syscall_fnname(name).decode()
        return fixed if _core.ksymname(fixed) is not None else name

    @staticmethod
    def kernel_struct_has_field(struct_name: Text, field_name: Text) -> bool:
        """Whether this kernel's struct has the field (from its BTF), for programs that adapt to it."""
        return _core.kernel_struct_has_field(_s(struct_name), _s(field_name))

    @staticmethod
    def kernel_enum_has_val(enum_name: Text, value_name: Text) -> bool:
        return _core.kernel_enum_has_val(_s(enum_name), _s(value_name))

    # -- user-space binaries -----------------------------------------------------------------------

    @staticmethod
    def find_library(libname: Text) -> bytes | None:
        """The path of shared library ``libname`` ("c", "pthread"), from the loader's cache."""
        from .._probes.uprobes import find_library

        path = find_library(_s(libname))
        return path.encode() if path else None

    @staticmethod
    def find_exe(bin_path: Text) -> bytes | None:
        """``bin_path`` if it is an executable file, else the executable of that name on $PATH."""
        name = _s(bin_path)
        if os.path.dirname(name):
            return name.encode() if os.path.isfile(name) and os.access(name, os.X_OK) else None
        exe = shutil.which(name)
        return exe.encode() if exe else None

    @staticmethod
    def get_user_functions_and_addresses(name: Text, sym_re: Text) -> list[tuple[bytes, int]]:
        """(function, address) in binary or library ``name`` for every function matching ``sym_re``."""
        path = resolve_binary(_s(name))
        regex = re.compile(_s(sym_re))
        seen: dict[int, bytes] = {}
        for fn, addr, _offset in _core.elf_functions(path):
            if regex.match(fn):
                seen.setdefault(addr, fn.encode())
        return [(fn, addr) for addr, fn in seen.items()]

    @staticmethod
    def get_user_functions(name: Text, sym_re: Text) -> list[bytes]:
        return [fn for fn, _ in KernelFacts.get_user_functions_and_addresses(name, sym_re)]

    @staticmethod
    def get_user_addresses(name: Text, sym_re: Text) -> list[int]:
        return [addr for _, addr in KernelFacts.get_user_functions_and_addresses(name, sym_re)]

    # -- symbols (bcc's: bytes, b"[unknown]" where no symbol covers the address) -------------------

    _sym_caches: dict[int, SymbolCache] = {}

    @staticmethod
    def _sym_cache(pid: int) -> SymbolCache:
        """The symbol cache of process ``pid``, or the kernel's for any ``pid`` below zero (one each,
        kept, as bcc keeps them)."""
        pid = -1 if pid < 0 else pid
        cache = KernelFacts._sym_caches.get(pid)
        if cache is None:
            cache = KernelFacts._sym_caches[pid] = SymbolCache(pid)
        return cache

    sym_cache = _sym_cache

    @staticmethod
    def sym(addr: Any, pid: int, show_module: bool = False, show_offset: bool = False, demangle: bool = True) -> bytes:
        """``addr`` in process ``pid`` (the kernel for ``pid`` < 0) as text: ``name``, with
        ``show_offset`` ``name+0x1a``, with ``show_module`` ``name [libc.so.6]``. ``addr`` may be a
        frame of a BPF_STACK_TRACE_BUILDID map, resolved by its build id (see ``add_module``)."""
        if type(addr) is int and not (show_module or show_offset):
            # a stack's frames, by the thousand in profile's report: the name alone, in fewest calls
            found = _core.ksym(addr) if pid < 0 else _core.usym(pid, addr, demangle)
            return b"[unknown]" if found is None else found[0].encode()
        if symbols.is_build_id_frame(addr):
            resolved = symbols.build_id_lookup(addr)
        else:
            resolved = symbols.lookup(-1 if pid < 0 else pid, addr, demangle, show_module)
        return symbols.text(resolved, show_module, show_offset)

    @staticmethod
    def ksym(addr: int, show_module: bool = False, show_offset: bool = False) -> bytes:
        """A kernel address as text; its module is ``kernel`` or the one kallsyms names (``bpf`` for a
        BPF program)."""
        if not (show_module or show_offset):
            found = _core.ksym(addr)
            return b"[unknown]" if found is None else found[0].encode()
        return KernelFacts.sym(addr, -1, show_module, show_offset, False)

    @staticmethod
    def ksymname(name: Text) -> int:
        """The address of kernel symbol ``name``, or -1."""
        return KernelFacts._sym_cache(-1).resolve_name(None, name)

    @staticmethod
    def add_module(modname: Text) -> None:
        """Register a library or executable by its build id, for ``sym`` of build-id frames."""
        symbols.add_module(modname)

    @staticmethod
    def inlined_syms(addr: int, pid: int) -> list[bytes]:
        """rbcc's own (bcc has no inlined frames): the functions DWARF says are inlined at ``addr`` in
        process ``pid``, innermost first: the frames a stack does not show between the code at
        ``addr`` and ``sym(addr, pid)``, which contains them. Empty without DWARF (or debug files)."""
        return symbols.inlined(addr, pid)

    @staticmethod
    def monotonic_time() -> float:
        """CLOCK_MONOTONIC in nanoseconds, the clock bpf_ktime_get_ns reads; a float, as bcc returns."""
        return float(time.monotonic_ns())
