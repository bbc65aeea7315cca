"""rbcc: bcc's Python API for eBPF tracing, on a Rust core that compiles against the kernel's BTF.

``from rbcc import BPF`` where a bcc script has ``from bcc import BPF``.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import _core, errors
from .errors import (
    AttachError,
    BPFError,
    CompileError,
    KernelFeatureError,
    PermissionError,
    ProbeSpecError,
    USDTException,
    VerifierError,
)
from .perf import PerfHWConfig, PerfSWConfig, PerfType
from .table import Table, table_for
from .tracing import TracePipe
from .uprobes import resolve_binary
from .usdt import USDT
from .utils import ArgString, StrcmpRewrite, printb

__all__ = [
    "BPF",
    "ArgString",
    "StrcmpRewrite",
    "printb",
    "AttachError",
    "BPFError",
    "CompileError",
    "KernelFeatureError",
    "PermissionError",
    "ProbeSpecError",
    "USDT",
    "USDTException",
    "VerifierError",
    "PerfHWConfig",
    "PerfSWConfig",
    "PerfType",
    "errors",
]

__version__ = "0.1.0"

Text = str | bytes

# debug flags, as in bcc
DEBUG_LLVM_IR = 0x1
DEBUG_BPF = 0x2
DEBUG_PREPROCESSOR = 0x4
DEBUG_SOURCE = 0x8
DEBUG_BPF_REGISTER_STATE = 0x10
DEBUG_BTF = 0x20


def _s(value: Text) -> str:
    """bcc took bytes where rbcc takes str: accept both."""
    return value.decode() if isinstance(value, (bytes, bytearray)) else value


class BPF:
    """A BPF program: compiled, loaded, its probe functions attached, its maps readable as tables."""

    # program types, as in bcc (for load_func / attach_* compatibility)
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    RAW_TRACEPOINT = 17

    _syscall_prefixes = ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_", "sys_")

    def __init__(
        self,
        src_file: Text = "",
        hdr_file: Text = "",
        text: Text | None = None,
        debug: int = 0,
        cflags: list[Text] | None = None,
        usdt_contexts: list[Any] | None = None,
        allow_rlimit: bool = True,
        device: Any = None,
        attach_usdt_ignore_pid: bool = False,
    ) -> None:
        self._obj: Any = None
        self._links: dict[tuple[str, str], list[Any]] = {}
        self._tables: dict[str, Table] = {}
        self._perf_buffers: dict[str, Any] = {}
        self._ring: Any = None
        self._trace: TracePipe | None = None
        self.debug = debug
        src_file = _s(src_file)
        if text is None:
            if not src_file:
                raise BPFError("BPF needs text= or src_file=")
            with open(src_file) as f:
                program = f.read()
            filename = src_file
        else:
            program = _s(text)
            filename = "<bpf text>"
        if hdr_file:
            with open(_s(hdr_file)) as f:
                program = f.read() + "\n" + program
        compiled = _core.compile(program, [_s(c) for c in cflags or []], filename)
        if debug & (DEBUG_PREPROCESSOR | DEBUG_SOURCE):
            print(compiled.rewritten)
        self.rewritten = compiled.rewritten
        self.cache_hit = compiled.cache_hit
        self._obj = _core.Object(compiled.object, "rbcc")
        self._programs = dict(self._obj.programs())
        try:
            self._auto_attach()
            for context in usdt_contexts or []:
                context.attach_to(self, attach_usdt_ignore_pid)
        except BaseException:
            self.cleanup()
            raise

    # -- attaching -------------------------------------------------------------------------------

    def _auto_attach(self) -> None:
        for fn in self._programs:
            if fn.startswith("kprobe__"):
                self.attach_kprobe(event=fn[len("kprobe__") :], fn_name=fn)
            elif fn.startswith("kretprobe__"):
                self.attach_kretprobe(event=fn[len("kretprobe__") :], fn_name=fn)
            elif fn.startswith("tracepoint__"):
                category, _, event = fn[len("tracepoint__") :].partition("__")
                self.attach_tracepoint(tp=f"{category}:{event}", fn_name=fn)
            elif fn.startswith("raw_tracepoint__"):
                self.attach_raw_tracepoint(tp=fn[len("raw_tracepoint__") :], fn_name=fn)
            elif fn.startswith(("kfunc__", "kretfunc__")):
                self.attach_kfunc(fn_name=fn)
            elif fn.startswith("lsm__"):
                self.attach_lsm(fn_name=fn)

    def _program(self, fn_name: Text) -> str:
        fn = _s(fn_name)
        if fn not in self._programs:
            raise BPFError(f"no BPF function named {fn!r} in this program (have: {', '.join(self._programs)})")
        return fn

    def _add_link(self, kind: str, key: str, link: Any) -> None:
        self._links.setdefault((kind, key), []).append(link)

    def _remove_links(self, kind: str, key: str) -> None:
        links = self._links.pop((kind, key), None)
        if links is None:
            raise BPFError(f"{kind} {key!r} is not attached")
        for link in links:
            link.detach()

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
            # not probeable: the kprobe machinery's own, perf's, and compiler-split parts (foo.cold)
            skip = name.startswith(("__kprobes", "_kbl_addr_", "__perf", "perf_")) or "." in name
            if regex.match(name) and not skip:
                names[name] = None
        return list(names)

    def attach_kprobe(self, event: Text = "", event_off: int = 0, fn_name: Text = "", event_re: Text = "") -> None:
        fn = self._program(fn_name)
        events = self._kernel_functions(_s(event_re)) if event_re else [_s(event)]
        for ev in events:
            self._add_link("kprobe", ev, self._obj.attach_kprobe(fn, ev, False))

    def attach_kretprobe(self, event: Text = "", fn_name: Text = "", event_re: Text = "", maxactive: int = 0) -> None:
        fn = self._program(fn_name)
        events = self._kernel_functions(_s(event_re)) if event_re else [_s(event)]
        for ev in events:
            self._add_link("kretprobe", ev, self._obj.attach_kprobe(fn, ev, True))

    def attach_kfunc(self, fn_name: Text) -> None:
        """Attach a KFUNC_PROBE/KRETFUNC_PROBE function (fentry/fexit) to the kernel function it names."""
        fn = self._program(fn_name)
        self._add_link("kfunc", fn, self._obj.attach_btf(fn))

    attach_kretfunc = attach_kfunc

    def detach_kfunc(self, fn_name: Text) -> None:
        self._remove_links("kfunc", self._program(fn_name))

    detach_kretfunc = detach_kfunc

    def _attach_usdt(self, fn_name: str, pid: int, binary: str, provider: str, name: str) -> None:
        fn = self._program(fn_name)
        self._add_link("usdt", f"{binary}:{provider}:{name}", self._obj.attach_usdt(fn, pid, binary, provider, name))

    def attach_lsm(self, fn_name: Text) -> None:
        """Attach an LSM_PROBE function to the LSM hook it names."""
        fn = self._program(fn_name)
        self._add_link("lsm", fn, self._obj.attach_btf(fn))

    def detach_lsm(self, fn_name: Text) -> None:
        self._remove_links("lsm", self._program(fn_name))

    @staticmethod
    def support_lsm() -> bool:
        """Whether this kernel loads and attaches BPF LSM programs (probed)."""
        return _core.has_lsm()

    @staticmethod
    def support_kfunc() -> bool:
        """Whether this kernel loads and attaches fentry/fexit programs (probed, not read from its version)."""
        return _core.has_fentry()

    def detach_kprobe(self, event: Text, fn_name: Text | None = None) -> None:
        self._remove_links("kprobe", _s(event))

    def detach_kretprobe(self, event: Text, fn_name: Text | None = None) -> None:
        self._remove_links("kretprobe", _s(event))

    def attach_tracepoint(self, tp: Text = "", tp_re: Text = "", fn_name: Text = "") -> None:
        fn = self._program(fn_name)
        tps = self.get_tracepoints(tp_re) if tp_re else [_s(tp)]
        for name in tps:
            category, sep, event = name.partition(":")
            if not sep:
                raise BPFError(f"tracepoint {name!r} must be category:event")
            self._add_link("tracepoint", name, self._obj.attach_tracepoint(fn, category, event))

    def detach_tracepoint(self, tp: Text = "") -> None:
        self._remove_links("tracepoint", _s(tp))

    def attach_raw_tracepoint(self, tp: Text = "", fn_name: Text = "") -> None:
        fn = self._program(fn_name)
        name = _s(tp)
        if ("raw_tracepoint", name) in self._links:
            raise BPFError(f"raw tracepoint {name!r} is already attached")
        self._add_link("raw_tracepoint", name, self._obj.attach_raw_tracepoint(fn, name))

    def detach_raw_tracepoint(self, tp: Text = "") -> None:
        self._remove_links("raw_tracepoint", _s(tp))

    def _attach_uprobe(
        self,
        retprobe: bool,
        name: Text,
        sym: Text,
        sym_re: Text,
        addr: int | None,
        fn_name: Text,
        pid: int,
        sym_off: int,
    ) -> None:
        fn = self._program(fn_name)
        path = resolve_binary(_s(name), pid)
        kind = "uretprobe" if retprobe else "uprobe"
        if sym_re:
            from .uprobes import functions_matching

            matches = functions_matching(path, _s(sym_re))
            if not matches:
                raise AttachError(f"no function in {path} matches {_s(sym_re)!r}")
            for symbol, offset in matches:
                link = self._obj.attach_uprobe(fn, retprobe, pid, path, offset, None)
                self._add_link(kind, f"{path}:{symbol}", link)
            return
        if addr is not None:
            link = self._obj.attach_uprobe(fn, retprobe, pid, path, addr, None)
            self._add_link(kind, f"{path}:0x{addr:x}", link)
            return
        symbol = _s(sym)
        try:
            link = self._obj.attach_uprobe(fn, retprobe, pid, path, sym_off, symbol)
        except AttachError:
            # libbpf finds only plain function symbols; an IFUNC (strlen) resolves through the loader
            from .uprobes import is_shared_library, loader_offsets

            offset = loader_offsets(path, [symbol]).get(symbol) if is_shared_library(path) else None
            if offset is None:
                raise
            link = self._obj.attach_uprobe(fn, retprobe, pid, path, offset + sym_off, None)
        self._add_link(kind, f"{path}:{symbol}", link)

    def attach_uprobe(
        self,
        name: Text = "",
        sym: Text = "",
        sym_re: Text = "",
        addr: int | None = None,
        fn_name: Text = "",
        pid: int = -1,
        sym_off: int = 0,
    ) -> None:
        self._attach_uprobe(False, name, sym, sym_re, addr, fn_name, pid, sym_off)

    def attach_uretprobe(
        self,
        name: Text = "",
        sym: Text = "",
        sym_re: Text = "",
        addr: int | None = None,
        fn_name: Text = "",
        pid: int = -1,
    ) -> None:
        self._attach_uprobe(True, name, sym, sym_re, addr, fn_name, pid, 0)

    def detach_uprobe(self, name: Text = "", sym: Text = "", addr: int | None = None, pid: int = -1) -> None:
        path = resolve_binary(_s(name), pid)
        self._remove_links("uprobe", f"{path}:{_s(sym) if addr is None else hex(addr)}")

    def detach_uretprobe(self, name: Text = "", sym: Text = "", addr: int | None = None, pid: int = -1) -> None:
        path = resolve_binary(_s(name), pid)
        self._remove_links("uretprobe", f"{path}:{_s(sym) if addr is None else hex(addr)}")

    def attach_perf_event(
        self,
        ev_type: int = -1,
        ev_config: int = -1,
        fn_name: Text = "",
        sample_period: int = 0,
        sample_freq: int = 0,
        pid: int = -1,
        cpu: int = -1,
        group_fd: int = -1,
    ) -> None:
        fn = self._program(fn_name)
        cpus = [cpu] if cpu >= 0 else _online_cpus()
        key = f"{ev_type}:{ev_config}"
        for c in cpus:
            link = self._obj.attach_perf_event(fn, ev_type, ev_config, sample_period, sample_freq, pid, c)
            self._add_link("perf_event", key, link)

    def detach_perf_event(self, ev_type: int = -1, ev_config: int = -1) -> None:
        self._remove_links("perf_event", f"{ev_type}:{ev_config}")

    def num_open_kprobes(self) -> int:
        return sum(len(v) for (k, _), v in self._links.items() if k in ("kprobe", "kretprobe"))

    def num_open_uprobes(self) -> int:
        return sum(len(v) for (k, _), v in self._links.items() if k in ("uprobe", "uretprobe", "usdt"))

    def num_open_tracepoints(self) -> int:
        return sum(len(v) for (k, _), v in self._links.items() if k == "tracepoint")

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
    def get_kprobe_functions(event_re: Text) -> list[bytes]:
        if not _core.has_kprobes():
            return []
        return [n.encode() for n in BPF._kernel_functions(_s(event_re))]

    @classmethod
    def get_syscall_prefix(cls) -> bytes:
        for prefix in cls._syscall_prefixes:
            if _core.ksymname(prefix + "bpf") is not None:
                return prefix.encode()
        return b"sys_"

    @classmethod
    def get_syscall_fnname(cls, name: Text) -> bytes:
        return cls.get_syscall_prefix() + _s(name).encode()

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
        from .uprobes import find_library

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
        return [fn for fn, _ in BPF.get_user_functions_and_addresses(name, sym_re)]

    @staticmethod
    def get_user_addresses(name: Text, sym_re: Text) -> list[int]:
        return [addr for _, addr in BPF.get_user_functions_and_addresses(name, sym_re)]

    @staticmethod
    def ksym(addr: int, show_module: bool = False, show_offset: bool = False) -> bytes:
        return _format_symbol(_core.ksym(addr), show_module, show_offset, "kernel")

    @staticmethod
    def ksymname(name: Text) -> int:
        addr = _core.ksymname(_s(name))
        return -1 if addr is None else addr

    @staticmethod
    def sym(addr: int, pid: int, show_module: bool = False, show_offset: bool = False, demangle: bool = True) -> bytes:
        if pid < 0:
            return BPF.ksym(addr, show_module, show_offset)
        found = _core.usym(pid, addr)
        if found is None and show_module:
            # bcc names the module even where it has no symbol for the address
            module = _mapped_file(pid, addr)
            return b"[unknown]" + (f" [{os.path.basename(module)}]".encode() if module else b"")
        return _format_symbol(found, show_module, show_offset, "unknown")

    @staticmethod
    def monotonic_time() -> int:
        return time.monotonic_ns()

    # -- tables ----------------------------------------------------------------------------------

    def get_table(
        self, name: Text, keytype: Any = None, leaftype: Any = None, reducer: Callable[..., Any] | None = None
    ) -> Table:
        key = _s(name)
        table = self._tables.get(key)
        if table is None:
            try:
                core_map = self._obj.map(key)
            except KeyError:
                raise KeyError(key) from None
            table = table_for(self, core_map, key, keytype, leaftype, reducer)
            self._tables[key] = table
        return table

    def __getitem__(self, name: Text) -> Table:
        return self.get_table(name)

    def __contains__(self, name: Text) -> bool:
        return _s(name) in self._obj.map_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._obj.map_names())

    def __len__(self) -> int:
        return len(self._obj.map_names())

    def __delitem__(self, name: Text) -> None:
        self._tables.pop(_s(name), None)

    def _event_type(self, name: str) -> dict[str, Any] | None:
        return self._obj.event_type(name)

    # -- events ----------------------------------------------------------------------------------

    def _register_perf_buffer(self, name: str, buffer: Any) -> None:
        self._perf_buffers[name] = buffer

    def _register_ring_buffer(self, name: str, core_map: Any, callback: Callable[[bytes], int]) -> None:
        if self._ring is None:
            self._ring = _core.RingBuffer()
        self._ring.add(core_map, callback)

    def perf_buffer_poll(self, timeout: int = -1) -> int:
        """Wait up to ``timeout`` ms (-1: until events arrive) and run the callbacks."""
        buffers = list(self._perf_buffers.values())
        if not buffers:
            raise BPFError("no perf buffer is open: call open_perf_buffer() first")
        if len(buffers) == 1:
            return buffers[0].poll(timeout)
        # Several buffers: wait for any of them (select releases the GIL; Ctrl-C interrupts it).
        select.select(buffers, [], [], None if timeout < 0 else timeout / 1000)
        return sum(b.consume() for b in buffers)

    def kprobe_poll(self, timeout: int = -1) -> int:
        """bcc's old name for perf_buffer_poll."""
        return self.perf_buffer_poll(timeout)

    def perf_buffer_consume(self) -> int:
        return sum(b.consume() for b in self._perf_buffers.values())

    def ring_buffer_poll(self, timeout: int = -1) -> int:
        if self._ring is None:
            raise BPFError("no ring buffer is open: call open_ring_buffer() first")
        return self._ring.poll(timeout)

    def ring_buffer_consume(self) -> int:
        if self._ring is None:
            raise BPFError("no ring buffer is open: call open_ring_buffer() first")
        return self._ring.consume()

    # -- trace_pipe ------------------------------------------------------------------------------

    def _pipe(self) -> TracePipe:
        if self._trace is None:
            self._trace = TracePipe(_core.tracefs())
        return self._trace

    def trace_open(self, nonblocking: bool = False) -> Any:
        return self._pipe().open(nonblocking)

    def trace_readline(self, nonblocking: bool = False) -> bytes:
        return self._pipe().readline(nonblocking)

    def trace_fields(self, nonblocking: bool = False) -> tuple[Any, ...]:
        return self._pipe().fields(nonblocking)

    def trace_print(self, fmt: Text | None = None) -> None:
        self._pipe().print_forever(_s(fmt) if fmt is not None else None)

    # -- lifetime --------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Detach every probe and release the program's maps and buffers."""
        for links in self._links.values():
            for link in links:
                link.detach()
        self._links.clear()
        self._perf_buffers.clear()
        self._ring = None
        self._tables.clear()
        if self._trace is not None:
            self._trace.close()
            self._trace = None
        self._obj = None

    def __enter__(self) -> BPF:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __del__(self) -> None:
        try:
            self.cleanup()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass


def _format_symbol(found: tuple[str, int, str] | None, show_module: bool, show_offset: bool, no_module: str) -> bytes:
    """bcc's symbol text: ``name[+0xoff] [module]``, or ``[unknown]``."""
    if found is None:
        return b"[unknown]"
    name, offset, module = found
    text = name
    if show_offset:
        text += f"+0x{offset:x}"
    if show_module:
        text += f" [{os.path.basename(module) or no_module}]"
    return text.encode()


def _mapped_file(pid: int, addr: int) -> str | None:
    """The file mapped at ``addr`` in process ``pid``, from its /proc maps."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                lo, _, hi = parts[0].partition("-")
                if len(parts) == 6 and int(lo, 16) <= addr < int(hi, 16) and parts[5].startswith("/"):
                    return parts[5].rstrip("\n")
    except OSError:
        pass
    return None


def _online_cpus() -> list[int]:
    with open("/sys/devices/system/cpu/online") as f:
        spec = f.read().strip()
    cpus: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus
