"""Stack traces for the sampling and blocking tools (profile, offcputime, wakeuptime): bcc's -U/-K and
--stack-storage-size options, the C that takes the stack ids, and the two ways bcc prints a stack
(one frame a line, or folded: ``comm;outer;...;inner count`` for flame graphs).
"""

from __future__ import annotations

import argparse
import errno
import sys
from typing import Any

from .. import BPF
from . import _common


def add_stack_choice(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-U",
        "--user-stacks-only",
        action="store_true",
        help="show stacks from user space only (no kernel space stacks)",
    )
    group.add_argument(
        "-K",
        "--kernel-stacks-only",
        action="store_true",
        help="show stacks from kernel space only (no user space stacks)",
    )


def add_stack_storage_size(p: argparse.ArgumentParser, default: int = 16384) -> None:
    p.add_argument(
        "--stack-storage-size",
        default=default,
        type=_common.positive_int,
        help="the number of unique stack traces that can be stored and displayed (default %(default)s)",
    )


def stack_getters(args: argparse.Namespace, ctx: str, table: str = "stack_traces") -> tuple[str, str]:
    """C expressions for (kernel stack id, user stack id); -1 for the side -U/-K leaves out."""
    kernel = f"{table}.get_stackid({ctx}, 0)"
    user = f"{table}.get_stackid({ctx}, BPF_F_USER_STACK)"
    if getattr(args, "user_stacks_only", False):
        kernel = "-1"
    elif getattr(args, "kernel_stacks_only", False):
        user = "-1"
    return kernel, user


def stack_context(args: argparse.Namespace) -> str:
    if getattr(args, "user_stacks_only", False):
        return "user"
    if getattr(args, "kernel_stacks_only", False):
        return "kernel"
    return "user + kernel"


def stack_id_err(stack_id: int) -> bool:
    """A failed get_stackid; -EFAULT only means there is no such stack (a kernel thread's user stack)."""
    return stack_id < 0 and stack_id != -errno.EFAULT


class Missing:
    """Counts stacks get_stackid could not store, for bcc's closing warning."""

    def __init__(self, hint_errno: int = errno.EEXIST) -> None:
        self.count = 0
        self.hint = False
        self.hint_errno = hint_errno  # the error that a bigger --stack-storage-size would cure

    def check(self, stack_id: int) -> None:
        if stack_id_err(stack_id):
            self.count += 1
            self.hint = self.hint or stack_id == -self.hint_errno

    def warn(self, what: str = "could not be displayed") -> None:
        if self.count:
            hint = " Consider increasing --stack-storage-size." if self.hint else ""
            print("WARNING: %d stack traces %s.%s" % (self.count, what, hint), file=sys.stderr)


def kernel_frames(b: BPF, stacks: Any, stack_id: int, ip: int = 0, annotate: bool = False) -> list[bytes]:
    """The kernel frames, innermost first, starting at ``ip`` when given (the sampled instruction)."""
    if stack_id < 0:
        return []
    addrs = list(stacks.walk(stack_id))
    # Older kernels start a perf event's kernel stack at the caller of the sampled function (bcc adds
    # the IP for them); newer ones start at the IP itself, which must not appear twice.
    if ip and (not addrs or addrs[0] != ip):
        addrs.insert(0, ip)
    suffix = b"_[k]" if annotate else b""
    return [b.ksym(a) + suffix for a in addrs]


def user_frames(b: BPF, stacks: Any, stack_id: int, pid: int) -> list[bytes]:
    """The user frames, innermost first, symbolized in process ``pid``."""
    if stack_id < 0:
        return []
    return [b.sym(a, pid) for a in stacks.walk(stack_id)]


def folded_frames(frames: list[bytes], stack_id: int, missed: str) -> list[str]:
    """One side of a folded line: outermost frame first, or the placeholder when the stack was lost."""
    if stack_id_err(stack_id):
        return [missed]
    return [f.decode("utf-8", "replace") for f in reversed(frames)]


def print_frames(frames: list[bytes], stack_id: int, missed: str) -> None:
    if stack_id_err(stack_id):
        print("    %s" % missed)
        return
    for f in frames:
        print("    %s" % f.decode("utf-8", "replace"))
