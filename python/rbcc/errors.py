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
    """A probe specification (trace/argdist/funccount syntax) is malformed."""
