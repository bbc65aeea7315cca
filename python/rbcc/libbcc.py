"""bcc's ``libbcc`` module, for scripts and tests that reach past bcc's Python API into its C library.

bcc's ``libbcc.lib`` is a ctypes handle on ``libbcc.so``. rbcc has no such library: its core is Rust,
and a script calling C functions of bcc's through ctypes cannot be served by it. What scripts and bcc's
own tests ask the library *about* this build is answered here, truthfully for rbcc; any other function
raises :class:`LibbccFunctionMissing`, an ``AttributeError`` naming the function, at the lookup (so
``hasattr(lib, name)`` and ``getattr(lib, name, None)`` tell the truth too).
"""

from __future__ import annotations

import ctypes as ct
import os
from collections.abc import Callable
from typing import Any

from . import _core
from .utils import as_str

__all__ = [
    "BCC_USDT_ARGUMENT_FLAGS",
    "LibbccFunctionMissing",
    "bcc_ip_offset_union",
    "bcc_perf_buffer_opts",
    "bcc_stacktrace_build_id",
    "bcc_symbol",
    "bcc_symbol_option",
    "bcc_usdt",
    "bcc_usdt_argument",
    "bcc_usdt_location",
    "lib",
]


class LibbccFunctionMissing(AttributeError):
    """A C function of bcc's libbcc.so that rbcc has no counterpart for."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"libbcc.{name}: rbcc has no libbcc.so (its core is not bcc's C library); use the BPF/table "
            f"API this script's bcc version offers for the same thing, which rbcc implements"
        )
        self.name = name


class _Lib:
    """The functions of libbcc.so that have an answer for rbcc, with libbcc's C return types (ints)."""

    @staticmethod
    def bpf_module_rw_engine_enabled() -> int:
        # bcc's "rw engine" formats and parses map keys and values as text (Table.key_sprintf,
        # key_scanf, leaf_sprintf, leaf_scanf); rbcc does that from the map's BTF types
        return 1

    @staticmethod
    def bpf_has_kernel_btf() -> int:
        return int(os.path.exists("/sys/kernel/btf/vmlinux"))

    @staticmethod
    def kernel_struct_has_field(struct_name: str | bytes, field_name: str | bytes) -> int:
        return int(_core.kernel_struct_has_field(as_str(struct_name), as_str(field_name)))

    @staticmethod
    def bcc_free_memory() -> int:
        # bcc frees its LLVM's memory here; rbcc keeps no compiler in the process
        return 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        raise LibbccFunctionMissing(name)

    def __repr__(self) -> str:
        return "<rbcc's stand-in for bcc's libbcc.so>"


lib = _Lib()


# The structures bcc's Python code hands to libbcc's symbol functions, as libbcc lays them out, for
# scripts that build them (they describe a C ABI; rbcc's own symbolization does not use them).
class bcc_symbol(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [
        ("name", ct.c_char_p),
        ("demangle_name", ct.c_char_p),
        ("module", ct.POINTER(ct.c_char)),
        ("offset", ct.c_ulonglong),
    ]


class bcc_symbol_option(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [
        ("use_debug_file", ct.c_int),
        ("check_debug_file_crc", ct.c_int),
        ("lazy_symbolize", ct.c_int),
        ("use_symbol_type", ct.c_uint),
    ]


class _ip_offset(ct.Union):  # noqa: N801 - its C name
    _fields_ = [("offset", ct.c_ulonglong), ("ip", ct.c_ulonglong)]


class bcc_stacktrace_build_id(ct.Structure):  # noqa: N801 - bcc's name
    """One frame of a BPF_STACK_TRACE_BUILDID map: status, the ELF's build id, and an offset or address."""

    _fields_ = [("status", ct.c_uint32), ("build_id", ct.c_ubyte * 20), ("u", _ip_offset)]


bcc_ip_offset_union = _ip_offset  # bcc's name for it


# The structures of libbcc's perf-buffer and USDT functions, as libbcc lays them out. rbcc has neither
# function (lib raises LibbccFunctionMissing for them); the types are here for scripts that name them, and
# BCC_USDT_ARGUMENT_FLAGS is what rbcc.usdt.USDTProbeArgument.valid holds.
class bcc_perf_buffer_opts(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [("pid", ct.c_int), ("cpu", ct.c_int), ("wakeup_events", ct.c_int)]


class bcc_usdt(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [
        ("provider", ct.c_char_p),
        ("name", ct.c_char_p),
        ("bin_path", ct.c_char_p),
        ("semaphore", ct.c_ulonglong),
        ("num_locations", ct.c_int),
        ("num_arguments", ct.c_int),
    ]


class bcc_usdt_location(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [("address", ct.c_ulonglong), ("bin_path", ct.c_char_p)]


class BCC_USDT_ARGUMENT_FLAGS:  # noqa: N801 - bcc's name
    """Which parts of a USDT argument's location are there (bits of ``valid``)."""

    NONE = 0x0
    CONSTANT = 0x1
    DEREF_OFFSET = 0x2
    DEREF_IDENT = 0x4
    BASE_REGISTER_NAME = 0x8
    INDEX_REGISTER_NAME = 0x10
    SCALE = 0x20


class bcc_usdt_argument(ct.Structure):  # noqa: N801 - bcc's name
    _fields_ = [
        ("size", ct.c_int),
        ("valid", ct.c_int),
        ("constant", ct.c_longlong),
        ("deref_offset", ct.c_int),
        ("deref_ident", ct.c_char_p),
        ("base_register_name", ct.c_char_p),
        ("index_register_name", ct.c_char_p),
        ("scale", ct.c_int),
    ]
