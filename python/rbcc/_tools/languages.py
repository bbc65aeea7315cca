"""What the language tools (ucalls, uflow, ugc, uobjnew, ustat, uthreads and their per-language
wrappers) know about each runtime: one table, language -> the USDT probes it fires and which probe
argument holds the class (or file), the method, a GC's details, an allocation's type and size.

Argument numbers are bpf_usdt_readarg's, from 1. The probes are the runtimes' own (hotspot's, CPython's
--with-dtrace ones, Ruby's, PHP's with USE_ZEND_DTRACE=1, Perl's -Dusedtrace, Tcl's, Node's); "c" is no
runtime: uobjnew traces malloc() and uthreads pthread creation for it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

from ..utils import detect_language

__all__ = [
    "LANGUAGES",
    "NODE_GC_TYPES",
    "Alloc",
    "Calls",
    "Gc",
    "Language",
    "Threads",
    "begin",
    "comm_matches",
    "languages_with",
    "processes_of",
    "read_names",
    "read_string",
    "resolve_language",
    "wrap",
]


@dataclass(frozen=True)
class Calls:
    """A method's entry and return probes; both carry the class (or file) and method name pointers at
    the same argument numbers. ``more`` are further entry/return pairs with the same arguments (Ruby's
    C methods), which uflow follows too; ``flow_entry`` replaces ``entry`` for uflow (Tcl's proc__args)."""

    entry: str
    ret: str
    method_arg: int
    class_arg: int | None  # None: the runtime names no class or file
    more: tuple[tuple[str, str], ...] = ()
    flow_entry: str | None = None
    method_len_arg: int | None = None  # where the names are not NUL-terminated: their lengths
    class_len_arg: int | None = None


@dataclass(frozen=True)
class Gc:
    """A garbage collection between two probes: C saving into ``e`` (struct entry_t) at its start and
    into ``event`` (struct gc_event_t) at its end, and how ugc describes the event (a % format over
    the event's fields, by name)."""

    begin: str
    end: str
    begin_save: str
    end_save: str
    describe: str


@dataclass(frozen=True)
class Alloc:
    """An allocation probe: the type's name is a string at ``name_arg`` (``name_len_arg`` its length
    where the runtime gives one) or the fixed ``name``; the size is at ``size_arg`` (None: unknown)."""

    probe: str
    name_arg: int | None = None
    name_len_arg: int | None = None
    name: str = ""
    size_arg: int | None = None


@dataclass(frozen=True)
class Threads:
    """Thread start and stop probes: the thread's name (a string), its runtime id and native id."""

    start: str
    stop: str
    name_arg: int
    name_len_arg: int | None
    id_arg: int
    native_id_arg: int


@dataclass(frozen=True)
class Language:
    name: str
    procnames: tuple[str, ...] = ()  # the comms ustat takes for this runtime's processes
    calls: Calls | None = None
    gcs: tuple[Gc, ...] = ()
    allocs: tuple[Alloc, ...] = ()
    threads: Threads | None = None
    stat: dict[str, str] = field(default_factory=dict)  # probe -> ustat's column (METHOD, GC, ...)
    hint: str = ""  # said once when tracing starts: what the runtime needs for its probes to fire


_JAVA_GC_BEGIN = """
    bpf_usdt_readarg(6, ctx, &e.field1);    // bytes used at the start
    bpf_usdt_readarg(8, ctx, &e.field2);    // bytes at most at the start
"""
_JAVA_GC_END = """
    event.field1 = e->field1;
    event.field2 = e->field2;
    bpf_usdt_readarg(6, ctx, &event.field3);   // bytes used at the end
    bpf_usdt_readarg(8, ctx, &event.field4);   // bytes at most at the end
    u64 manager = 0, pool = 0, len = 0;
    bpf_usdt_readarg(1, ctx, &manager);     // the names are not NUL-terminated: their lengths follow
    bpf_usdt_readarg(2, ctx, &len);
    if (len > sizeof(event.string1) - 1)
        len = sizeof(event.string1) - 1;
    bpf_probe_read_user(&event.string1, len, (void *)manager);
    bpf_usdt_readarg(3, ctx, &pool);
    bpf_usdt_readarg(4, ctx, &len);
    if (len > sizeof(event.string2) - 1)
        len = sizeof(event.string2) - 1;
    bpf_probe_read_user(&event.string2, len, (void *)pool);
"""

LANGUAGES: dict[str, Language] = {
    "c": Language("c", allocs=(Alloc("malloc"),)),
    "java": Language(
        "java",
        procnames=("java",),
        # the class and method names are not NUL-terminated: their lengths are arguments 3 and 5
        calls=Calls("method__entry", "method__return", method_arg=4, class_arg=2, method_len_arg=5, class_len_arg=3),
        gcs=(
            Gc(
                "mem__pool__gc__begin",
                "mem__pool__gc__end",
                _JAVA_GC_BEGIN,
                _JAVA_GC_END,
                "%(string1)s %(string2)s used=%(field1)d->%(field3)d max=%(field2)d->%(field4)d",
            ),
            Gc("gc__begin", "gc__end", "", "", "no additional info available"),
        ),
        allocs=(Alloc("object__alloc", name_arg=2, name_len_arg=3, size_arg=4),),
        threads=Threads("thread__start", "thread__stop", name_arg=1, name_len_arg=2, id_arg=3, native_id_arg=4),
        stat={
            "gc__begin": "GC",
            "mem__pool__gc__begin": "GC",
            "thread__start": "THREAD",
            "class__loaded": "CLOAD",
            "object__alloc": "OBJNEW",
            "method__entry": "METHOD",
            "ExceptionOccurred__entry": "EXCP",
        },
        hint="If you do not see any results, make sure you ran java with option -XX:+ExtendedDTraceProbes",
    ),
    "node": Language(
        "node",
        procnames=("node",),
        gcs=(
            Gc(
                "gc__start",
                "gc__done",
                "",
                "    u32 gc_type = 0;\n    bpf_usdt_readarg(1, ctx, &gc_type);\n    event.field1 = gc_type;\n",
                "node",  # the type's bits, named by describe_node_gc
            ),
        ),
        stat={"gc__start": "GC"},
    ),
    "perl": Language(
        "perl",
        procnames=("perl",),
        calls=Calls("sub__entry", "sub__return", method_arg=1, class_arg=2),  # "class": the file
        stat={"sub__entry": "METHOD"},
    ),
    "php": Language(
        "php",
        procnames=("php",),
        calls=Calls("function__entry", "function__return", method_arg=1, class_arg=4),
        stat={"function__entry": "METHOD", "compile__file__entry": "CLOAD", "exception__thrown": "EXCP"},
        hint="If you do not see any results, make sure the environment variable USE_ZEND_DTRACE is set to 1",
    ),
    "python": Language(
        "python",
        procnames=("python",),
        calls=Calls("function__entry", "function__return", method_arg=2, class_arg=1),  # "class": the file
        gcs=(
            Gc(
                "gc__start",
                "gc__done",
                "    int gen = 0;\n    bpf_usdt_readarg(1, ctx, &gen);\n    e.field1 = gen;\n",
                "    long objs = 0;\n    bpf_usdt_readarg(1, ctx, &objs);\n"
                "    event.field1 = e->field1;\n    event.field2 = objs;\n",
                "gen %(field1)d GC collected %(field2)d objects",
            ),
        ),
        stat={"function__entry": "METHOD", "gc__start": "GC"},
        # cpython issue 98894: 3.11 reaches its function probes only on its tracing path; 3.12-3.14 lack them
        hint="If you do not see any calls: CPython 3.11 fires function__entry/return only while a profile "
        "or trace function is set (sys.setprofile), and 3.12 to 3.14 not at all",
    ),
    "ruby": Language(
        "ruby",
        procnames=("ruby", "irb"),
        calls=Calls(
            "method__entry",
            "method__return",
            method_arg=2,
            class_arg=1,
            more=(("cmethod__entry", "cmethod__return"),),
        ),
        gcs=(
            Gc("gc__mark__begin", "gc__mark__end", "", "", "GC mark stage"),
            Gc("gc__sweep__begin", "gc__sweep__end", "", "", "GC sweep stage"),
        ),
        allocs=(
            Alloc("object__create", name_arg=1),  # Ruby does not say an object's size
            Alloc("string__create", name="string", size_arg=1),
            Alloc("hash__create", name="hash", size_arg=1),
            Alloc("array__create", name="array", size_arg=1),
        ),
        stat={
            "method__entry": "METHOD",
            "cmethod__entry": "METHOD",
            "gc__mark__begin": "GC",
            "gc__sweep__begin": "GC",
            "object__create": "OBJNEW",
            "hash__create": "OBJNEW",
            "string__create": "OBJNEW",
            "array__create": "OBJNEW",
            "require__entry": "CLOAD",
            "load__entry": "CLOAD",
            "raise": "EXCP",
        },
    ),
    "tcl": Language(
        "tcl",
        procnames=("tclsh", "wish"),
        calls=Calls("proc__entry", "proc__return", method_arg=1, class_arg=None, flow_entry="proc__args"),
        allocs=(Alloc("obj__create", name="<ALL>"),),
        stat={"proc__entry": "METHOD", "obj__create": "OBJNEW"},
    ),
}

NODE_GC_TYPES = {1: "GC scavenge", 2: "GC mark-sweep-compact", 4: "GC incremental mark", 8: "GC weak callbacks"}


def languages_with(what: str) -> list[str]:
    """The languages whose entry has ``what`` (calls, gcs, allocs, threads, stat), in the table's order."""
    return [name for name, lang in LANGUAGES.items() if getattr(lang, what)]


def read_string(dest: str, ptr_var: str, arg: int | None, len_arg: int | None = None) -> str:
    """C that reads USDT argument ``arg`` (a pointer to a string) into the zeroed char array ``dest``;
    nothing if no argument. A string that is not NUL-terminated has its length at ``len_arg``: only
    that many bytes are read (at most the array's, less its NUL)."""
    if arg is None:
        return ""
    c = f"    bpf_usdt_readarg({arg}, ctx, &{ptr_var});\n"
    if len_arg is None:
        return c + f"    bpf_probe_read_user(&{dest}, sizeof({dest}), (void *){ptr_var});\n"
    return c + (
        f"    {{\n        u64 len = 0;\n        bpf_usdt_readarg({len_arg}, ctx, &len);\n"
        f"        if (len > sizeof({dest}) - 1)\n            len = sizeof({dest}) - 1;\n"
        f"        bpf_probe_read_user(&{dest}, len, (void *){ptr_var});\n    }}\n"
    )


def read_names(calls: Calls, clazz: str, method: str) -> str:
    """C reading a call's class (or file) and method names into the char arrays ``clazz`` and ``method``
    (through the u64 locals ``clazz`` and ``method``)."""
    return read_string(clazz, "clazz", calls.class_arg, calls.class_len_arg) + read_string(
        method, "method", calls.method_arg, calls.method_len_arg
    )


def resolve_language(args: argparse.Namespace, candidates: list[str]) -> str | None:
    """The language to trace: -l as given, else the one the process ``args.pid`` runs (bcc's guess from
    its executable and libraries)."""
    if args.language:
        return str(args.language)
    return detect_language(candidates, args.pid)


def comm_matches(comm: str, procnames: tuple[str, ...]) -> bool:
    """Whether a process's comm names one of ``procnames``, a version after it allowed: Debian's
    python3's comm is "python3", a hand-built one may be "python3.11", tclsh "tclsh8.6"."""
    for name in procnames:
        rest = comm[len(name) :] if comm.startswith(name) else None
        if rest is not None and all(c.isdigit() or c == "." for c in rest):
            return True
    return False


def processes_of(procnames: tuple[str, ...]) -> dict[int, str]:
    """pid -> command line of every process whose comm names the runtime (ustat's targets)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
            if not comm_matches(comm, procnames):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue  # the process ended while we looked
    return found


class _Main(Protocol):
    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def wrap(
    tool: ModuleType, prog: str, language: str
) -> tuple[Callable[[], argparse.ArgumentParser], Callable[[argparse.Namespace], str], _Main]:
    """A bcc language wrapper (pythoncalls = ucalls -l python): ``tool``'s build_parser, bpf_text and
    main under the wrapper's name ``prog``, the language set."""

    def build_parser() -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = tool.build_parser(prog, language)
        return parser

    def bpf_text(args: argparse.Namespace) -> str:
        return str(tool.bpf_text(args))

    def main(argv: Sequence[str] | None = None) -> int:
        return int(tool.main(argv, prog, language))

    return build_parser, bpf_text, main


def begin(
    args: argparse.Namespace, supported: list[str], bpf_text: Callable[[argparse.Namespace], str]
) -> tuple[int | None, str]:
    """The start of a language tool's run: the language resolved (-l, else the process's own) into
    ``args.language``, the C printed under -v or --ebpf. (a status to end with at once, or None; the C)."""
    args.language = resolve_language(args, supported)
    if args.language is None:
        print("No language detected; use -l to trace a language.")
        return 1, ""
    text = bpf_text(args)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0, text
    return None, text
