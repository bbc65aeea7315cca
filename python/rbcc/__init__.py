"""rbcc: bcc's Python API for eBPF tracing, on a Rust core that compiles against the kernel's BTF.

``from rbcc import BPF`` where a bcc script has ``from bcc import BPF``. This module is the facade: the
names bcc's package has, each defined where it belongs (the ``BPF`` class in ``rbcc._bpf``, tables in
``rbcc._tables``, probes in ``rbcc._probes``, what the kernel offers in ``rbcc._kernel``, the probe-spec
language of the multi-tools in ``rbcc._specs``). bcc's modules keep their names: ``rbcc.table``,
``rbcc.utils``, ``rbcc.syscall``, ``rbcc.tcp``, ``rbcc.perf``, ``rbcc.usdt``, ``rbcc.containers``.
"""

from __future__ import annotations

from typing import Any

from . import errors
from ._bpf import (
    BPF,
    DEBUG_BPF,
    DEBUG_BPF_REGISTER_STATE,
    DEBUG_BTF,
    DEBUG_LLVM_IR,
    DEBUG_PREPROCESSOR,
    DEBUG_SOURCE,
    DEBUGFS,
)
from ._bpf import _get_num_open_probes as _get_num_open_probes  # bcc's, for tests counting probes
from ._kernel.symbols import SymbolCache
from ._probes.programs import BPFAttachType, BPFProgType, XDPAction, XDPFlags
from ._probes.usdt import USDT
from ._tables.factory import TableLike
from .errors import (
    AttachError,
    BPFError,
    CompileError,
    Diagnostic,
    KernelFeatureError,
    PermissionError,
    ProbeSpecError,
    ToolchainError,
    UnsupportedError,
    USDTException,
    VerifierError,
)
from .perf import Perf, PerfEventSampleFormat, PerfHWConfig, PerfSWConfig, PerfType
from .table import BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK, PerfEventArray, RingBuf, Table
from .utils import ArgString, StrcmpRewrite, get_online_cpus, printb

__all__ = [
    "BPF",
    "BPF_MAP_TYPE_QUEUE",
    "BPF_MAP_TYPE_STACK",
    "DEBUGFS",
    "DEBUG_BPF",
    "DEBUG_BPF_REGISTER_STATE",
    "DEBUG_BTF",
    "DEBUG_LLVM_IR",
    "DEBUG_PREPROCESSOR",
    "DEBUG_SOURCE",
    "BPFAttachType",
    "BPFProgType",
    "XDPAction",
    "XDPFlags",
    "ArgString",
    "StrcmpRewrite",
    "get_online_cpus",
    "printb",
    "AttachError",
    "BPFError",
    "CompileError",
    "Diagnostic",
    "KernelFeatureError",
    "PermissionError",
    "ProbeSpecError",
    "TableLike",
    "ToolchainError",
    "USDT",
    "USDTException",
    "UnsupportedError",
    "VerifierError",
    "Perf",
    "PerfEventArray",
    "PerfEventSampleFormat",
    "PerfHWConfig",
    "PerfSWConfig",
    "PerfType",
    "RingBuf",
    "Table",
    "TRACEFS",
    "bcc_stacktrace_build_id",
    "bcc_symbol",
    "bcc_symbol_option",
    "decode_map",
    "disassemble_prog",
    "SymbolCache",
    "errors",
    "trace",
    "argdist",
    "lib",
    "flamegraph",
    "load_ipython_extension",
]

__version__ = "0.1.0"


_LIBBCC_NAMES = ("lib", "bcc_symbol", "bcc_symbol_option", "bcc_stacktrace_build_id")


def __getattr__(name: str) -> Any:
    # the notebook API of the multi-tools, imported on first use: it builds on BPF, and a script that
    # never calls it does not pay for the probe-spec parser at import
    if name in ("trace", "argdist"):
        from ._specs import sessions

        return getattr(sessions, name)
    if name == "flamegraph":  # stacks to an SVG drawn by the core (rbcc.notebook has the pictures' API)
        from ._pictures.flame import flamegraph

        return flamegraph
    if name in _LIBBCC_NAMES:  # bcc's package exports its libbcc handle and structs (`from bcc import lib`)
        from . import libbcc

        return getattr(libbcc, name)
    if name in ("disassemble_prog", "decode_map"):  # the disassembler names helpers from the kernel's BTF
        from . import disassembler

        return getattr(disassembler, name)
    if name == "TRACEFS":
        # bcc's is where tracefs is mounted; rbcc mounts it where it is missing (as root), on first use
        # rather than at import
        from . import _core

        try:
            return _core.tracefs()
        except BPFError:
            return "/sys/kernel/tracing"
    raise AttributeError(f"module 'rbcc' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext rbcc``: the ``%%bpf NAME`` cell magic (compiles the cell's C into a BPF object)."""
    from ._pictures.magic import load_ipython_extension as load

    load(ipython)
