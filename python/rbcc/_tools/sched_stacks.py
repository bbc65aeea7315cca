"""Stack traces for the sampling and blocking tools (profile, offcputime, wakeuptime): bcc's -U/-K,
--stack-storage-size, -m/-M and duration options, the C that takes the stack ids, tracing for the
duration before one report, and the two ways bcc prints a stack (one frame a line, or folded:
``comm;outer;...;inner count`` for flame graphs).
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections.abc import Callable
from typing import Any

from .. import BPF
from . import common, pictures, sched

U64_MAX = (1 << 64) - 1


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
        type=common.positive_int,
        help="the number of unique stack traces that can be stored and displayed (default %(default)s)",
    )


def add_duration(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "duration", nargs="?", default=sched.FOREVER, type=common.positive_int, help="duration of trace, in seconds"
    )


def add_block_times(p: argparse.ArgumentParser) -> None:
    """offcputime's and wakeuptime's -m/-M: the range of blocked times (microseconds) to count."""
    p.add_argument(
        "-m",
        "--min-block-time",
        default=1,
        type=common.positive_int,
        help="the amount of time in microseconds over which we store traces (default 1)",
    )
    p.add_argument(
        "-M",
        "--max-block-time",
        default=U64_MAX,
        type=common.positive_int,
        help="the amount of time in microseconds under which we store traces (default U64_MAX)",
    )


def fill_block_times(text: str, args: argparse.Namespace) -> str:
    """``text`` with its stack map size and -m/-M bounds (STACK_STORAGE_SIZE, MINBLOCK_US, MAXBLOCK_US)."""
    return (
        text.replace("STACK_STORAGE_SIZE", str(args.stack_storage_size))
        .replace("MINBLOCK_US", str(args.min_block_time))
        .replace("MAXBLOCK_US", f"{args.max_block_time}ULL")
    )


def duration_tail(duration: int) -> str:
    """How bcc's headers end: the duration, or how to stop."""
    return " for %d secs." % duration if duration < sched.FOREVER else "... Hit Ctrl-C to end."


def trace_then_report(args: argparse.Namespace, wait: Callable[[], object], report: Callable[[], None]) -> None:
    """``wait()`` while the probes count (until the duration is over, or Ctrl-C), then ``report()``,
    after a blank line unless folded."""
    try:
        wait()
    except KeyboardInterrupt:
        # reading and symbolizing the stacks takes a while: a second Ctrl-C must not cut it short
        signal.signal(signal.SIGINT, lambda *_: print())
    if not args.folded:
        print()
    report()


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

    def check_key(self, args: argparse.Namespace, k: Any) -> None:
        """Check the stacks of key ``k`` that -U/-K asks for."""
        if not getattr(args, "user_stacks_only", False):
            self.check(k.kernel_stack_id)
        if not getattr(args, "kernel_stacks_only", False):
            self.check(k.user_stack_id)

    def warn(self, what: str = "could not be displayed") -> None:
        if self.count:
            hint = " Consider increasing --stack-storage-size." if self.hint else ""
            print("WARNING: %d stack traces %s.%s" % (self.count, what, hint), file=sys.stderr)


# Frames a stack taken in a (raw) tracepoint program starts with: the program and the tracepoint's
# dispatch, above the kernel function that hit the tracepoint.
TRACING_FRAMES = (b"bpf_prog_", b"bpf_trace_run", b"__traceiter_", b"__bpf_trace_")


def kernel_frames(
    b: BPF, stacks: Any, stack_id: int, ip: int = 0, annotate: bool = False, from_tracepoint: bool = False
) -> list[bytes]:
    """The kernel frames, innermost first, starting at ``ip`` when given (the sampled instruction), or
    with ``from_tracepoint`` at the function that hit the tracepoint."""
    if stack_id < 0:
        return []
    addrs = list(stacks.walk(stack_id))
    if from_tracepoint:
        while addrs and b.ksym(addrs[0]).startswith(TRACING_FRAMES):
            addrs.pop(0)
    # Older kernels start a perf event's kernel stack at the caller of the sampled function (bcc adds
    # the IP for them); newer ones start at the IP itself, which must not appear twice.
    if ip and (not addrs or addrs[0] != ip):
        addrs.insert(0, ip)
    suffix = b"_[k]" if annotate else b""
    return [b.ksym(a) + suffix for a in addrs]


def add_inline(p: argparse.ArgumentParser) -> None:
    """rbcc's --inline (bcc has none): user stacks show the functions inlined where they are."""
    p.add_argument(
        "--inline",
        action="store_true",
        help="show the functions inlined in user stack frames too, from DWARF (annotated _[i] with -a)",
    )


def user_frames(
    b: BPF, stacks: Any, stack_id: int, pid: int, inline: bool = False, annotate: bool = False
) -> list[bytes]:
    """The user frames, innermost first, symbolized in process ``pid``; with ``inline``, each preceded
    by the functions DWARF says are inlined at its address (``_[i]`` with ``annotate``, flamegraph.pl's
    mark for them)."""
    if stack_id < 0:
        return []
    if not inline:
        return [b.sym(a, pid) for a in stacks.walk(stack_id)]
    suffix = b"_[i]" if annotate else b""
    frames = []
    for i, addr in enumerate(stacks.walk(stack_id)):
        # past the first frame, an address is where a call returns to, which can already be the code
        # after an inlined call: its inlining is that of the call, one byte before
        frames += [f + suffix for f in b.inlined_syms(addr - 1 if i else addr, pid)]
        frames.append(b.sym(addr, pid))
    return frames


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


def _delimit(args: argparse.Namespace, k: Any) -> bool:
    """Whether -d puts its delimiter between this key's user and kernel stacks."""
    return bool(
        args.delimited
        and not (args.kernel_stacks_only or args.user_stacks_only)
        and k.kernel_stack_id >= 0
        and k.user_stack_id >= 0
    )


def folded_stack(
    args: argparse.Namespace, k: Any, kernel: list[bytes], user: list[bytes], annotate: bool = False
) -> list[str]:
    """The frames of key ``k``'s folded line, outermost first: its name, the user stack, then the
    kernel stack (each ``_[k]``-annotated with ``annotate``, for a flame graph's colours)."""
    line = [k.name.decode("utf-8", "replace")]
    if not args.kernel_stacks_only:
        line += folded_frames(user, k.user_stack_id, "[Missed User Stack]")
    if not args.user_stacks_only:
        line += ["-"] if _delimit(args, k) else []
        kframes = folded_frames(kernel, k.kernel_stack_id, "[Missed Kernel Stack]")
        line += pictures.annotated(kframes) if annotate else kframes
    return line


def both_stacks(args: argparse.Namespace) -> bool:
    """Whether the tool shows user and kernel stacks together (then a flame graph tells them apart)."""
    return not (args.kernel_stacks_only or args.user_stacks_only)


def print_stack(args: argparse.Namespace, k: Any, value: int, kernel: list[bytes], user: list[bytes]) -> None:
    """One counted stack of key ``k`` (its name, pid and stack ids) in bcc's layout: frames one per line
    then "- comm (pid)" and the value, or with -f one folded line, outermost frame first."""
    name = k.name.decode("utf-8", "replace")
    delimit = _delimit(args, k)
    if args.folded:
        print("%s %d" % (";".join(folded_stack(args, k, kernel, user)), value))
        return
    if not args.user_stacks_only:
        print_frames(kernel, k.kernel_stack_id, "[Missed Kernel Stack]")
    if not args.kernel_stacks_only:
        if delimit:
            print("    --")
        print_frames(user, k.user_stack_id, "[Missed User Stack]")
    print("    %-16s %s (%d)" % ("-", name, k.pid))
    print("        %d\n" % value)
