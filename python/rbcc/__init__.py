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
)
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
    USDTException,
    VerifierError,
)
from .perf import PerfHWConfig, PerfSWConfig, PerfType
from .utils import ArgString, StrcmpRewrite, get_online_cpus, printb

__all__ = [
    "BPF",
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
    "USDT",
    "USDTException",
    "VerifierError",
    "PerfHWConfig",
    "PerfSWConfig",
    "PerfType",
    "SymbolCache",
    "errors",
    "trace",
    "argdist",
    "lib",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # the notebook API of the multi-tools, imported on first use: it builds on BPF, and a script that
    # never calls it does not pay for the probe-spec parser at import
    if name in ("trace", "argdist"):
        from ._specs import sessions

        return getattr(sessions, name)
    if name == "lib":  # bcc's package exports its libbcc handle (`from bcc import lib`)
        from .libbcc import lib

        return lib
    raise AttributeError(f"module 'rbcc' has no attribute {name!r}")
