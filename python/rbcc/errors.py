"""rbcc's one exception hierarchy.

Every failure a user can cause raises a subclass of :class:`BPFError`, which
derives from :class:`Exception`, so bcc-era ``except Exception`` keeps working.
The Rust core raises these same classes (it looks them up here by name).
"""

from __future__ import annotations

import builtins

__all__ = [
    "AttachError",
    "BPFError",
    "CompileError",
    "KernelFeatureError",
    "PermissionError",
    "ProbeSpecError",
    "USDTException",
    "VerifierError",
]


class BPFError(Exception):
    """Base class of every rbcc error."""


class CompileError(BPFError):
    """The BPF C did not compile; the message holds clang's diagnostics at the user's lines."""


class VerifierError(BPFError):
    """The kernel's verifier rejected a program; the message ends with the verifier log."""


class AttachError(BPFError):
    """A program could not be attached to its probe point."""


class KernelFeatureError(AttachError):
    """The running kernel lacks a feature (kprobes, fentry, ...); the message names it and an alternative."""


class PermissionError(BPFError, builtins.PermissionError):  # noqa: A001 - the name users expect
    """The process lacks a capability; the message names it."""


class USDTException(AttachError):
    """A USDT probe was not found or could not be enabled (bcc's name for it)."""


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
