"""bcc's ``BPF`` names beyond compiling, attaching and reading tables: its bookkeeping dicts (what is
attached, by kind), small helpers (``add_prefix``, ``fix_syscall_fnname``, ``str2ctype``, ``timespec``),
the disassembly of a function and the layout of a table, and the few names rbcc refuses, each with
the reason (``UnsupportedError``). ``BPF`` inherits them."""

from __future__ import annotations

import ctypes as ct
import os
import re
from typing import TYPE_CHECKING, Any, TypeAlias

from ._kernel.facts import KernelFacts
from ._tables.base import Table as _Table
from .errors import UnsupportedError
from .utils import as_str

if TYPE_CHECKING:
    from . import _core
    from ._kernel.tracepipe import TracePipe

Text = str | bytes

_EVENT_CHARS = re.compile(r"[+.]")  # what bcc replaces with "_" in a kprobe's event name

_EVENT_NAMES = (
    "bcc names kprobe and uprobe events in tracefs (p_do_sys_open, p__lib_libc_so_6_0x8e0); rbcc attaches "
    "through BPF links, which have no such names: detach with detach_kprobe(event=...) or "
    "detach_uprobe(name=..., sym=...)"
)


def _links_fds(links: dict[tuple[str, str], list[Any]], kinds: dict[str, bytes]) -> dict[bytes, list[Any]]:
    """``{name: attachments}`` of the given kinds (kind -> bcc's name prefix) of a BPF object's links."""
    found: dict[bytes, list[Any]] = {}
    for (kind, key), attached in links.items():
        if kind in kinds:
            found[kinds[kind] + key.encode()] = list(attached)
    return found


class BccNames:
    """The part of bcc's ``BPF`` that is about bcc's own machinery, as rbcc has it."""

    _links: dict[tuple[str, str], list[Any]]
    _tables: dict[str, Any]
    _perf_buffers: dict[str, _core.PerfBuffer]
    _programs: dict[str, str]
    _trace: TracePipe | None
    _source: str

    def _loaded(self) -> _core.Object:
        raise NotImplementedError  # ProgramFunctions'

    def _program(self, fn_name: Text) -> str:
        raise NotImplementedError  # BPF's

    def dump_func(self, func_name: Text) -> bytes:
        raise NotImplementedError  # ProgramFunctions'

    def get_syscall_fnname(self, name: Text) -> bytes:
        raise NotImplementedError  # KernelFacts'

    # -- constants and types bcc keeps on BPF --

    CLOCK_MONOTONIC = 1  # linux/time.h; BPF.monotonic_time() reads it (bpf_ktime_get_ns's clock)

    class timespec(ct.Structure):
        _fields_ = [("tv_sec", ct.c_long), ("tv_nsec", ct.c_long)]

    # the C type names bcc's table descriptions used, and their ctypes
    str2ctype: dict[str, Any] = {
        "_Bool": ct.c_bool,
        "char": ct.c_char,
        "wchar_t": ct.c_wchar,
        "unsigned char": ct.c_ubyte,
        "short": ct.c_short,
        "unsigned short": ct.c_ushort,
        "int": ct.c_int,
        "unsigned int": ct.c_uint,
        "long": ct.c_long,
        "unsigned long": ct.c_ulong,
        "long long": ct.c_longlong,
        "unsigned long long": ct.c_ulonglong,
        "float": ct.c_float,
        "double": ct.c_double,
        "long double": ct.c_longdouble,
        "__int128": ct.c_int64 * 2,
        "unsigned __int128": ct.c_uint64 * 2,
    }

    Table: TypeAlias = _Table  # bcc keeps its table base class here, "for compatibility"

    # -- small helpers --

    @staticmethod
    def add_prefix(prefix: Any, name: Any) -> Any:
        """``name`` with ``prefix`` in front unless it starts with it (str or bytes, as given)."""
        return name if name.startswith(prefix) else prefix + name

    def fix_syscall_fnname(self, name: Text) -> bytes:
        """A syscall's kernel function named with any architecture's prefix (``sys_clone``,
        ``__x64_sys_clone``), renamed with this kernel's."""
        text = as_str(name)
        for prefix in KernelFacts._syscall_prefixes:
            if text.startswith(prefix):
                return self.get_syscall_fnname(text[len(prefix) :])
        return text.encode()

    def free_bcc_memory(self) -> int:
        """bcc frees the memory of its in-process compiler here. rbcc compiles in a child process, so
        there is nothing of the kind in this one: 0, as bcc returns when it freed nothing."""
        return 0

    def donothing(self) -> None:
        """bcc's do-nothing exit handler."""

    # -- what is attached, by kind (bcc's dicts; values are the attachments, not raw fds) --

    @property
    def kprobe_fds(self) -> dict[bytes, list[Any]]:
        return _links_fds(
            {(k, _EVENT_CHARS.sub("_", e)): v for (k, e), v in self._links.items()},
            {"kprobe": b"p_", "kretprobe": b"r_"},
        )

    @property
    def uprobe_fds(self) -> dict[bytes, list[Any]]:
        return _links_fds(self._links, {"uprobe": b"p_", "uretprobe": b"r_", "usdt": b"p_"})

    @property
    def tracepoint_fds(self) -> dict[bytes, list[Any]]:
        return _links_fds(self._links, {"tracepoint": b""})

    @property
    def raw_tracepoint_fds(self) -> dict[bytes, list[Any]]:
        return _links_fds(self._links, {"raw_tracepoint": b""})

    def _btf_links(self, section_prefixes: tuple[str, ...]) -> dict[bytes, list[Any]]:
        kfuncs = _links_fds(self._links, {"kfunc": b"", "fmod_ret": b""})
        return {fn: v for fn, v in kfuncs.items() if self._programs.get(fn.decode(), "").startswith(section_prefixes)}

    @property
    def kfunc_entry_fds(self) -> dict[bytes, list[Any]]:
        return self._btf_links(("fentry/", "fmod_ret/"))

    @property
    def kfunc_exit_fds(self) -> dict[bytes, list[Any]]:
        return self._btf_links(("fexit/",))

    @property
    def lsm_fds(self) -> dict[bytes, list[Any]]:
        return _links_fds(self._links, {"lsm": b""})

    @property
    def open_perf_events(self) -> dict[tuple[int, int], list[Any]]:
        """``{(ev_type, ev_config): attachments}`` of attach_perf_event and attach_perf_event_raw."""
        found: dict[tuple[int, int], list[Any]] = {}
        for (kind, key), attached in self._links.items():
            if kind == "perf_event":
                ev_type, _, ev_config = key.partition(":")
                found[(int(ev_type), int(ev_config))] = list(attached)
        return found

    @property
    def perf_buffers(self) -> dict[str, _core.PerfBuffer]:
        """The open perf buffers, by table name."""
        return dict(self._perf_buffers)

    @property
    def tables(self) -> dict[str, Any]:
        """The tables made so far (``b["name"]``), by name."""
        return self._tables

    @property
    def tracefile(self) -> Any:
        """trace_pipe, once trace_open (or trace_print, trace_fields...) opened it; else None."""
        return getattr(self._trace, "_file", None)

    # -- refused: bcc's own internals --

    @property
    def module(self) -> Any:
        raise UnsupportedError.of(
            "BPF.module",
            "it is libbcc's C handle of the compiled module; rbcc's core is not libbcc, so no libbcc "
            "function could take it (rbcc.libbcc.lib says which of them rbcc answers)",
        )

    def detach_kprobe_event(self, ev_name: Text) -> None:
        raise UnsupportedError.of("BPF.detach_kprobe_event", _EVENT_NAMES)

    def detach_kprobe_event_by_fn(self, ev_name: Text, fn_name: Text) -> None:
        raise UnsupportedError.of("BPF.detach_kprobe_event_by_fn", _EVENT_NAMES)

    def detach_uprobe_event(self, ev_name: Text) -> None:
        raise UnsupportedError.of("BPF.detach_uprobe_event", _EVENT_NAMES)

    # -- disassembly and layouts --

    def _source_lines(self, func_name: str) -> dict[int, str]:
        """The source line before each instruction that starts one (``; text @ file:line``), from the
        object's BTF line info, shown as the user wrote it (the C compiled is rewritten, line for line)."""
        program = self._source.splitlines()
        lines: dict[int, str] = {}
        last: tuple[str, int] | None = None
        fn = self._functions_loaded_as(func_name)
        for insn, path, line, _column, text in self._loaded().func_lines(func_name, *fn):
            file = os.path.basename(path)
            if line == 0 or (file, line) == last:
                continue  # line 0: code the compiler made up; the same line again: its next part
            last = (file, line)
            if not file.endswith(".h") and 0 < line <= len(program):
                text = program[line - 1]
            lines[insn] = f"; {text.strip()} @ {file}:{line}"
        return lines

    def _functions_loaded_as(self, func_name: str) -> tuple[int | None, int | None, str | None]:
        fn = getattr(self, "_functions", {}).get(func_name)
        if fn is None:
            return (None, None, None)
        return (fn.prog_type, fn.attach_type if fn.attach_type >= 0 else None, fn.device)

    def _map_names_by_fd(self, insns: bytes) -> dict[int, str]:
        """The names of the maps the instructions load by fd: the object's fds, matched to its maps by
        the kernel's map id (/proc/self/fdinfo)."""
        ids = {self._loaded().map(name).id: name for name in self._loaded().map_names()}
        names: dict[int, str] = {}
        for i in range(0, len(insns) - 7, 8):
            if insns[i] != 0x18 or insns[i + 1] >> 4 not in (1, 2):  # lddw of a map fd / map value
                continue
            fd = int.from_bytes(insns[i + 4 : i + 8], "little", signed=True)
            try:
                with open(f"/proc/self/fdinfo/{fd}") as f:
                    map_id = next((int(x.split()[1]) for x in f if x.startswith("map_id:")), None)
            except OSError:
                continue
            if map_id in ids:
                names[fd] = ids[map_id]
        return names

    def disassemble_func(self, func_name: Text, source: bool = True) -> str:
        """The instructions of ``func_name`` as bcc prints them (``rbcc.disassembler``), with each source
        line before its instructions (``source=False``: bcc's lines only) and each map named."""
        from .disassembler import disassemble_prog

        name = self._program(func_name)
        insns = self.dump_func(name)
        lines = self._source_lines(name) if source else None
        return disassemble_prog(name, insns, lines, self._map_names_by_fd(insns))

    def decode_table(self, table_name: Text, sizeinfo: bool = False) -> str:
        """The key and value layout of table ``table_name`` as bcc prints it (``sizeinfo``: with each
        field's offset and size)."""
        from .disassembler import decode_map

        table = self[as_str(table_name)]  # type: ignore[index]  # BPF's __getitem__
        return decode_map(as_str(table_name), table, table.ttype, sizeinfo)
