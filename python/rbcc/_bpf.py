"""The ``BPF`` class: a bcc-dialect program compiled by the core, loaded, its probe functions attached,
its maps readable as tables, its buffers polled. ``rbcc`` (the package) re-exports it with the rest of
bcc's names."""

from __future__ import annotations

import os
import select
import weakref
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from . import _core
from ._bpfnames import BccNames
from ._kernel.facts import KernelFacts
from ._kernel.tracepipe import TracePipe
from ._probes.kprobes import KprobeGroup, attach_kprobes
from ._probes.programs import ProgramFunctions
from ._probes.uprobes import resolve_binary
from ._tables.factory import TableLike, table_for
from .errors import AttachError, BPFError, CompileError
from .utils import as_str, get_online_cpus

__all__ = [
    "BPF",
    "DEBUGFS",
    "DEBUG_BPF",
    "DEBUG_BPF_REGISTER_STATE",
    "DEBUG_BTF",
    "DEBUG_LLVM_IR",
    "DEBUG_PREPROCESSOR",
    "DEBUG_SOURCE",
]

Text = str | bytes

# debug flags, as in bcc
DEBUG_LLVM_IR = 0x1
DEBUG_BPF = 0x2
DEBUG_PREPROCESSOR = 0x4
DEBUG_SOURCE = 0x8
DEBUG_BPF_REGISTER_STATE = 0x10
DEBUG_BTF = 0x20

DEBUGFS = "/sys/kernel/debug"

# every BPF object alive, for bcc's count of the probes open in the process
_live: weakref.WeakSet[BPF] = weakref.WeakSet()


def _get_num_open_probes() -> int:
    """The kprobes and uprobes (USDT probes too) every BPF object of the process has attached: bcc's
    count, which its probe limit checks (``BPF.get_probe_limit()``)."""
    return sum(b.num_open_kprobes() + b.num_open_uprobes() for b in list(_live))


def _log_level(debug: int) -> int:
    """The verifier's log level bcc asks for with these debug flags (it prints the log of every load)."""
    if debug & DEBUG_BPF_REGISTER_STATE:
        return 2
    return 1 if debug & DEBUG_BPF else 0


_s = as_str


def _program_text(text: str | bytes, filename: str) -> str:
    """Program text as str; bytes that are not UTF-8 are a CompileError at their line and column."""
    if isinstance(text, str):
        return text
    try:
        return bytes(text).decode()
    except UnicodeDecodeError as e:
        line = text.count(b"\n", 0, e.start) + 1
        column = e.start - (text.rfind(b"\n", 0, e.start) + 1) + 1
        what = f"byte 0x{text[e.start]:02x} is not UTF-8; rbcc reads programs as UTF-8"
        where = (filename, line, column)
        raise CompileError(f"{filename}:{line}:{column}: error: {what}", [(*where, "error", what)]) from None


class BPF(KernelFacts, ProgramFunctions, BccNames):
    """A BPF program: compiled, loaded, its probe functions attached, its maps readable as tables.
    Functions loaded by hand (load_func, attach_xdp, ...) are rbcc._probes.programs'; bcc's bookkeeping
    and small helpers rbcc._bpfnames'.

    As bcc does, the verifier's log of a program it rejects is printed to stderr (with ``debug`` holding
    DEBUG_BPF or DEBUG_BPF_REGISTER_STATE, the log of every program loaded too); ``quiet=True`` (rbcc's
    own) prints none: the ``VerifierError`` raised carries the log either way."""

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
        *,
        quiet: bool = False,
    ) -> None:
        self._obj: _core.Object | None = None
        self._init_programs()
        self._links: dict[tuple[str, str], list[_core.Link | KprobeGroup]] = {}
        self._tables: dict[str, TableLike] = {}
        self._perf_buffers: dict[str, _core.PerfBuffer] = {}
        self._ring: _core.RingBuffer | None = None
        self._trace: TracePipe | None = None
        self.debug = debug
        src_file = _s(src_file)
        if text is None:
            if not src_file:
                raise BPFError("BPF needs text= or src_file=")
            with open(src_file, "rb") as f:
                program = _program_text(f.read(), src_file)
            filename = src_file
        else:
            filename = "<bpf text>"
            program = _program_text(text, filename)
        if hdr_file:
            with open(_s(hdr_file)) as f:
                program = f.read() + "\n" + program
        if isinstance(cflags, (str, bytes)):
            raise ValueError(f"cflags is a list of flags, not one string: use cflags=[{_s(cflags)!r}]")
        for c in cflags or []:
            if not isinstance(c, (str, bytes)):
                raise TypeError(f"cflags holds strings, not {type(c).__name__} ({c!r})")
        for context in usdt_contexts or []:
            if not callable(getattr(context, "attach_to", None)):
                raise TypeError(f"usdt_contexts holds USDT objects, not {type(context).__name__} ({context!r})")
        flags = [_s(c) for c in cflags or []]
        if usdt_contexts:
            flags.append("-D__RBCC_USDT")  # libbpf attaches USDT probes only where its USDT maps are
        compiled = _core.compile(program, flags, filename)
        if debug & (DEBUG_PREPROCESSOR | DEBUG_SOURCE):
            print(compiled.rewritten)
        self.rewritten = compiled.rewritten
        self.cache_hit = compiled.cache_hit
        self._source = program  # the text compiled, for the source lines of a disassembly
        self._obj = _core.Object(compiled.object, "rbcc", _log_level(debug), not quiet)
        _live.add(self)
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
            elif fn.startswith("kmod_ret__"):
                self.attach_fmod_ret(fn_name=fn)
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
        links = self._links.get((kind, key))
        if links is None:
            raise BPFError(f"{kind} {key!r} is not attached")
        for link in links:
            if isinstance(link, KprobeGroup):
                link.remove(key)  # the group's other functions stay attached (if that fails, all do)
            else:
                link.detach()
        del self._links[(kind, key)]

    def attach_kprobe(self, event: Text = "", event_off: int = 0, fn_name: Text = "", event_re: Text = "") -> None:
        fn = self._program(fn_name)
        for ev, link in attach_kprobes(self._loaded(), fn, self._kprobe_targets(event, event_re), retprobe=False):
            self._add_link("kprobe", ev, link)

    def attach_kretprobe(self, event: Text = "", fn_name: Text = "", event_re: Text = "", maxactive: int = 0) -> None:
        fn = self._program(fn_name)
        for ev, link in attach_kprobes(self._loaded(), fn, self._kprobe_targets(event, event_re), retprobe=True):
            self._add_link("kretprobe", ev, link)

    def _kprobe_targets(self, event: Text, event_re: Text) -> list[str]:
        if not event_re:
            return [self._kprobe_event(_s(event))]
        if not _core.has_kprobes():
            # Matching nothing would attach nothing and let the script go on (or say "0 functions
            # traced"); the attach names the missing feature instead.
            return [_s(event_re)]
        return self._kernel_functions(_s(event_re))

    def _attach_btf(self, kind: str, fn_name: Text) -> None:
        # fentry/fexit, fmod_ret and LSM programs name their target in their section
        fn = self._program(fn_name)
        self._add_link(kind, fn, self._loaded().attach_btf(fn))

    def attach_kfunc(self, fn_name: Text) -> None:
        """Attach a KFUNC_PROBE/KRETFUNC_PROBE function (fentry/fexit) to the kernel function it names."""
        self._attach_btf("kfunc", fn_name)

    attach_kretfunc = attach_kfunc

    def detach_kfunc(self, fn_name: Text) -> None:
        self._remove_links("kfunc", self._program(fn_name))

    detach_kretfunc = detach_kfunc

    def attach_fmod_ret(self, fn_name: Text) -> None:
        """Attach a KMOD_RET function (fmod_ret) to the kernel function it names."""
        self._attach_btf("fmod_ret", fn_name)

    def detach_fmod_ret(self, fn_name: Text) -> None:
        self._remove_links("fmod_ret", self._program(fn_name))

    def open_iter(self, fn_name: Text, map: Text | None = None) -> BinaryIO:
        """A binary file whose reads run BPF_ITER function ``fn_name`` and return what it printed.

        Each call is a new pass over the kernel's objects; ``map`` names the map a map iterator walks.
        """
        fd = self._loaded().iter_fd(self._program(fn_name), _s(map) if map is not None else None)
        return os.fdopen(fd, "rb")

    def _attach_usdt(self, fn_name: str, pid: int, binary: str, provider: str, name: str) -> None:
        fn = self._program(fn_name)
        link = self._loaded().attach_usdt(fn, pid, binary, provider, name)
        self._add_link("usdt", f"{binary}:{provider}:{name}", link)

    def attach_lsm(self, fn_name: Text) -> None:
        """Attach an LSM_PROBE function to the LSM hook it names."""
        self._attach_btf("lsm", fn_name)

    def detach_lsm(self, fn_name: Text) -> None:
        self._remove_links("lsm", self._program(fn_name))

    def detach_kprobe(self, event: Text, fn_name: Text | None = None) -> None:
        self._remove_links("kprobe", self._kprobe_event(_s(event)))

    def detach_kretprobe(self, event: Text, fn_name: Text | None = None) -> None:
        self._remove_links("kretprobe", self._kprobe_event(_s(event)))

    def attach_tracepoint(self, tp: Text = "", tp_re: Text = "", fn_name: Text = "") -> None:
        fn = self._program(fn_name)
        tps = self.get_tracepoints(tp_re) if tp_re else [_s(tp)]
        for name in tps:
            category, sep, event = name.partition(":")
            if not sep:
                raise BPFError(f"tracepoint {name!r} must be category:event")
            self._add_link("tracepoint", name, self._loaded().attach_tracepoint(fn, category, event))

    def detach_tracepoint(self, tp: Text = "") -> None:
        self._remove_links("tracepoint", _s(tp))

    def attach_raw_tracepoint(self, tp: Text = "", fn_name: Text = "") -> None:
        fn = self._program(fn_name)
        name = _s(tp)
        if ("raw_tracepoint", name) in self._links:
            raise BPFError(f"raw tracepoint {name!r} is already attached")
        self._add_link("raw_tracepoint", name, self._loaded().attach_raw_tracepoint(fn, name))

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
            from ._probes.uprobes import functions_matching

            matches = functions_matching(path, _s(sym_re))
            if not matches:
                raise AttachError(f"no function in {path} matches {_s(sym_re)!r}")
            for symbol, offset in matches:
                link = self._loaded().attach_uprobe(fn, retprobe, pid, path, offset, None)
                self._add_link(kind, f"{path}:{symbol}", link)
            return
        if addr is not None:
            link = self._loaded().attach_uprobe(fn, retprobe, pid, path, addr, None)
            self._add_link(kind, f"{path}:0x{addr:x}", link)
            return
        symbol = _s(sym)
        try:
            link = self._loaded().attach_uprobe(fn, retprobe, pid, path, sym_off, symbol)
        except AttachError:
            # libbpf finds only plain function symbols in the file's own tables: an IFUNC (strlen)
            # resolves through the loader, and a local function a distribution strips (libc's
            # internals) is named in the file's split debug file, where bcc finds it too
            from ._probes.uprobes import is_shared_library, loader_offsets

            resolved = loader_offsets(path, [symbol]).get(symbol) if is_shared_library(path) else None
            if resolved is None:
                resolved = _core.symbol_file_offset(path, symbol)
            if resolved is None:
                raise
            link = self._loaded().attach_uprobe(fn, retprobe, pid, path, resolved + sym_off, None)
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
        cpus = [cpu] if cpu >= 0 else get_online_cpus()
        key = f"{ev_type}:{ev_config}"
        for c in cpus:
            obj = self._loaded()
            link = obj.attach_perf_event(fn, ev_type, ev_config, sample_period, sample_freq, pid, c, group_fd)
            self._add_link("perf_event", key, link)

    def attach_perf_event_raw(
        self, attr: Any = -1, fn_name: Text = "", pid: int = -1, cpu: int = -1, group_fd: int = -1, cookie: int = 0
    ) -> None:
        """Attach PERF_EVENT function ``fn_name`` to the perf event ``attr`` describes (a
        ``Perf.perf_event_attr``: type, config, sampling, flags), on ``cpu`` or every online CPU.
        ``cookie`` (rbcc's) is what ``bpf_get_attach_cookie(ctx)`` returns in the program. Detach with
        ``detach_perf_event(attr.type, attr.config)``."""
        import ctypes

        if not isinstance(attr, ctypes.Structure):
            raise TypeError(f"attr is a Perf.perf_event_attr, not {type(attr).__name__}")
        fn = self._program(fn_name)
        raw = bytes(attr)
        cpus = [cpu] if cpu >= 0 else get_online_cpus()
        for c in cpus:
            link = self._loaded().attach_perf_event_raw(fn, raw, pid, c, group_fd, cookie)
            self._add_link("perf_event", f"{attr.type}:{attr.config}", link)

    def detach_perf_event(self, ev_type: int = -1, ev_config: int = -1) -> None:
        self._remove_links("perf_event", f"{ev_type}:{ev_config}")

    # bcc counts the probe points open (its dicts of them), not the functions attached there

    def num_open_kprobes(self) -> int:
        """The kprobes and kretprobes open: each function probed counts once per kind."""
        return sum(1 for k, _ in self._links if k in ("kprobe", "kretprobe"))

    def num_open_uprobes(self) -> int:
        """The uprobes and uretprobes open (a USDT probe counts once)."""
        return sum(1 for k, _ in self._links if k in ("uprobe", "uretprobe", "usdt"))

    def num_open_tracepoints(self) -> int:
        return sum(1 for k, _ in self._links if k == "tracepoint")

    # -- tables ----------------------------------------------------------------------------------

    # A table's class is its map's kind (rbcc.table's classes, TableLike), known once the program is loaded,
    # and scripts call that kind's own methods on it (open_perf_buffer, walk, print_log2_hist): typed as
    # Any, as a dict of mixed values would be. Check with isinstance where it matters.
    def get_table(
        self, name: Text, keytype: Any = None, leaftype: Any = None, reducer: Callable[..., Any] | None = None
    ) -> Any:
        key = _s(name)
        table = self._tables.get(key)
        if table is None:
            try:
                core_map = self._loaded().map(key)
            except KeyError:
                raise KeyError(key) from None
            table = table_for(self, core_map, key, keytype, leaftype, reducer)
            self._tables[key] = table
        return table

    def __getitem__(self, name: Text) -> Any:
        # `b["events"]` runs in every event callback: a table already made is one dict lookup away
        try:
            return self._tables[name]  # type: ignore[index]
        except KeyError:
            return self.get_table(name)

    def __contains__(self, name: Text) -> bool:
        return _s(name) in self._loaded().map_names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded().map_names())

    def __len__(self) -> int:
        return len(self._loaded().map_names())

    def __delitem__(self, name: Text) -> None:
        self._tables.pop(_s(name), None)

    def _event_type(self, name: str) -> dict[str, Any] | None:
        return self._loaded().event_type(name)

    # -- events ----------------------------------------------------------------------------------

    def _register_perf_buffer(self, name: str, buffer: _core.PerfBuffer) -> None:
        self._perf_buffers[name] = buffer

    def _register_ring_buffer(
        self,
        name: str,
        core_map: _core.Map,
        callback: Callable[..., Any],
        record_size: int | None = None,
        ctx: Any = None,
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> None:
        if self._ring is None:
            self._ring = _core.RingBuffer()
        self._ring.add(core_map, callback, record_size, ctx, on_error)

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
        """Detach every probe and release the program's maps and buffers; unlike bcc, also remove the
        XDP programs and attach_func attachments this object made (see rbcc._probes.programs)."""
        self._release_programs()
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

    def close(self) -> None:
        """Release the program and its maps, leaving what is attached attached (as bcc's close, which
        closes the module's fds but detaches nothing); ``cleanup()`` later detaches it."""
        self.__dict__.get("_functions", {}).clear()
        self._tables.clear()
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
