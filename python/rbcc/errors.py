"""rbcc's one exception hierarchy.

Every failure a user can cause raises a subclass of :class:`BPFError`, which
derives from :class:`Exception`, so bcc-era ``except Exception`` keeps working.
The Rust core raises these same classes, with their fields filled in: a
:class:`CompileError`'s ``diagnostics``, a :class:`VerifierError`'s ``log`` and
``insn``, an :class:`AttachError`'s ``target``, a :class:`KernelFeatureError`'s
``feature`` and ``alternative``. Each class can also be raised with just a
message; the fields then hold their empty defaults.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "AttachError",
    "BPFError",
    "CompileError",
    "Diagnostic",
    "KernelFeatureError",
    "PermissionError",
    "ProbeSpecError",
    "ToolchainError",
    "USDTException",
    "UnsupportedError",
    "VerifierError",
]


class Diagnostic(NamedTuple):
    """What the compiler said about one place of the program, at the user's own file and line."""

    file: str
    line: int
    column: int | None  # None where the compiler names only the line (clang's BPF backend)
    severity: str  # clang's word: "error", "fatal error", "warning", "note"
    message: str


class BPFError(Exception):
    """Base class of every rbcc error."""


class CompileError(BPFError):
    """The BPF C did not compile; the message holds clang's diagnostics at the user's lines.

    ``diagnostics`` holds them as :class:`Diagnostic` records, empty when no line of the program is to
    blame (a tracepoint the kernel lacks, a compiler that crashed)."""

    diagnostics: list[Diagnostic]

    def __init__(self, message: str, diagnostics: Iterable[tuple[str, int, int | None, str, str]] = ()) -> None:
        super().__init__(message)
        self.diagnostics = [Diagnostic(*d) for d in diagnostics]


class VerifierError(BPFError):
    """The kernel's verifier rejected a program; the message ends with the verifier log.

    ``log`` is the verifier's log; ``insn`` the index of the instruction it stopped at, None when the
    log names none (it refused the program before reading an instruction). ``log_printed`` is true when
    the log went to stderr already (as bcc prints it, unless ``BPF(quiet=True)``)."""

    log: str
    insn: int | None
    log_printed: bool = False

    def __init__(self, message: str, log: str = "", insn: int | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.insn = insn


class AttachError(BPFError):
    """A program could not be attached to its probe point.

    ``target`` names it as ``"<kind> <where>"``: ``"tracepoint sched:sched_switch"``, ``"kprobe
    do_nanosleep"``, ``"uprobe /usr/lib/libc.so.6:malloc"``, ``"usdt /bin/x:provider:probe"``,
    ``"xdp eth0"``; or the file whose probes could not be read. Empty when unknown."""

    target: str

    def __init__(self, message: str, target: str = "") -> None:
        super().__init__(message)
        self.target = target


class KernelFeatureError(AttachError):
    """The running kernel lacks a feature (kprobes, fentry, ...); the message names it and an alternative.

    ``feature`` names what is missing (``"kprobes"``, ``"fentry/fexit"``, ``"BPF LSM"``, ``"BTF"``,
    ...); ``alternative`` says what to use instead, empty when nothing can stand in."""

    feature: str
    alternative: str

    def __init__(self, message: str, feature: str = "", alternative: str = "", target: str = "") -> None:
        super().__init__(message, target)
        self.feature = feature
        self.alternative = alternative


class PermissionError(BPFError, builtins.PermissionError):  # noqa: A001 - the name users expect
    """The process lacks a capability; the message names it."""


class ToolchainError(BPFError):
    """The clang binary and libclang cannot compile together: their LLVM versions differ, one is outside
    the supported range (README's table), or clang is not installed.

    ``clang`` and ``libclang`` name each as ``"path (LLVM N)"`` (empty when not found); the message
    names both and what to install or set (``RBCC_CLANG``, ``LIBCLANG_PATH``)."""

    clang: str
    libclang: str

    def __init__(self, message: str, clang: str = "", libclang: str = "") -> None:
        super().__init__(message)
        self.clang = clang
        self.libclang = libclang


class USDTException(AttachError):
    """A USDT probe was not found or could not be enabled (bcc's name for it)."""


class UnsupportedError(BPFError, NotImplementedError):
    """A name of bcc's API that rbcc has on purpose without bcc's behaviour, because what it does has no
    counterpart in rbcc (it reaches into libbcc's C internals, or bcc's tracefs event names).

    ``name`` is bcc's name (``"BPF.detach_kprobe_event"``); ``reason`` says why, and what to use instead.
    The README's "bcc API coverage" table lists every such name."""

    def __init__(self, message: str, name: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason

    @classmethod
    def of(cls, name: str, reason: str) -> UnsupportedError:
        return cls(f"{name}: not supported by rbcc: {reason}", name, reason)


class ProbeSpecError(BPFError, ValueError):
    """A probe specification (trace/argdist/funccount syntax) is malformed.

    ``spec`` is the specification and ``position`` the offset in it where the problem is; the message
    quotes the spec with a caret line under that offset."""

    def __init__(self, message: str, spec: str | None = None, position: int | None = None) -> None:
        self.spec = spec
        self.position = position
        self.reason = message
        if spec is not None and position is not None:
            # tabs and newlines would move the caret off its column: show them as spaces
            shown = "".join(" " if c in "\t\n\r\v\f" else c for c in spec)
            message = f"{message}\n    {shown}\n    {' ' * position}^"
        super().__init__(message)
