"""What funclatency, funcslower and funcinterval share: the targets of a pattern as entry/exit pairs
(a function's entry and return; a tracepoint or USDT probe and its closing partner), and attaching
one entry program per target with one shared exit program.

A function is timed from its entry to its return (uprobe and uretprobe; kprobe and kretprobe for the
kernel's). A tracepoint or USDT probe has no return, so it is timed to its partner on the same thread,
found by :data:`PAIR_RULE`: ``sys_enter_read`` closes at ``sys_exit_read``, ``irq_handler_entry`` at
``irq_handler_exit``, ``query__start`` at ``query__done``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .. import BPF, USDT, _core
from .._specs.pattern import PatternSpec
from ..errors import AttachError, KernelFeatureError
from . import common, counting

# An opening word of an event's name, and the words that may close it, in the order they are tried.
CLOSERS = {
    "enter": ("exit",),
    "entry": ("exit", "return"),
    "start": ("done", "end", "finish", "complete"),
    "begin": ("end",),
}

PAIR_RULE = (
    "A tracepoint (t:CATEGORY:EVENT) or USDT probe (u:LIBRARY:PROBE) is timed from its firing to the "
    "firing of its partner in the same thread: the same name with the last of its words (split at '_') "
    "that is enter, entry, start or begin replaced: enter by exit, entry by exit or return, start by "
    "done, end, finish or complete, begin by end (the first that exists). E.g. t:syscalls:sys_enter_read "
    "ends at syscalls:sys_exit_read, t:irq:softirq_entry at irq:softirq_exit, u:postgres:query__start at "
    "query__done. Events without a partner are left out."
)

# one probe each; bcc's cap on a pattern's matches
PROBE_LIMIT = counting.PROBE_LIMIT


class Target(NamedTuple):
    """What one entry program times: ``name`` as shown, ``entry`` and ``exit`` where the probes go (the
    same function for p, the two events or probes for t and u)."""

    name: str
    entry: str
    exit: str


def partner(name: str, exists: Callable[[str], bool]) -> str | None:
    """The event closing ``name`` by :data:`PAIR_RULE`, if one exists."""
    words = name.split("_")
    for i in range(len(words) - 1, -1, -1):
        closers = CLOSERS.get(words[i])
        if closers is None:
            continue
        for closer in closers:
            candidate = "_".join([*words[:i], closer, *words[i + 1 :]])
            if exists(candidate):
                return candidate
        return None
    return None


def is_user(pattern: PatternSpec) -> bool:
    """Whether the pattern's targets live in processes (user functions, USDT probes)."""
    return pattern.kind == "u" or (pattern.kind == "p" and bool(pattern.library))


def pairs(pattern: PatternSpec, names: Sequence[str], everything: Sequence[str]) -> list[Target]:
    """``names`` (what the pattern matched) as targets; for t and u, those that have a partner among
    ``everything`` (every event or probe of the category or binary)."""
    if pattern.kind == "p":
        return [Target(n, n, n) for n in names]
    known = set(everything)
    found = []
    for n in names:
        prefix, sep, event = n.rpartition(":")
        closing = partner(event, _known_in(known, prefix + sep))
        if closing is not None:
            found.append(Target(n, n, f"{prefix}{sep}{closing}"))
    return found


def _known_in(known: set[str], prefix: str) -> Callable[[str], bool]:
    return lambda name: prefix + name in known


def targets(pattern: PatternSpec, pid: int | None) -> list[Target]:
    """The pattern's targets on this system (AttachError when none)."""
    names = counting.targets(pattern, pid)
    if pattern.kind == "p":
        return pairs(pattern, names, names)
    if pattern.kind == "t":
        everything = BPF.get_tracepoints()
    else:
        everything = [p.name.decode() for p in USDT(path=pattern.library, pid=pid).enumerate_probes()]
    found = pairs(pattern, names, everything)
    if not found:
        raise AttachError(f"no event matched by {pattern.text!r} has a partner to time to. {PAIR_RULE}")
    return found


def need_kernel_functions(pattern: PatternSpec, alternative: str) -> None:
    """KernelFeatureError (one line through common.guard) for a kernel function pattern on a kernel
    without kprobes."""
    if pattern.kind == "p" and not pattern.library and not _core.has_kprobes():
        raise KernelFeatureError(
            "kernel functions need kprobes, which this kernel lacks (CONFIG_KPROBES is not set); " + alternative,
            feature="kprobes",
            alternative=alternative,
        )


def load_pairs(
    pattern: PatternSpec, found: Sequence[Target], text: str, pid: int | None, exit_fn: str = "trace_return"
) -> BPF:
    """Load ``text`` and attach ``trace_entry_N`` where target N starts and ``exit_fn`` where it ends."""
    usdt = None
    if pattern.kind == "u":
        usdt = USDT(path=pattern.library, pid=pid)
        for n, t in enumerate(found):
            usdt.enable_probe(t.entry, f"trace_entry_{n}")
            usdt.enable_probe(t.exit, exit_fn)
    b = BPF(text=text, usdt_contexts=[usdt] if usdt else [])
    try:
        for n, t in enumerate(found):
            fn = f"trace_entry_{n}"
            if pattern.kind == "t":
                b.attach_tracepoint(tp=t.entry, fn_name=fn)
                b.attach_tracepoint(tp=t.exit, fn_name=exit_fn)
            elif pattern.kind == "p" and pattern.library:
                b.attach_uprobe(name=pattern.library, sym=t.entry, fn_name=fn, pid=pid or -1)
                b.attach_uretprobe(name=pattern.library, sym=t.exit, fn_name=exit_fn, pid=pid or -1)
            elif pattern.kind == "p":
                b.attach_kprobe(event=t.entry, fn_name=fn)
                b.attach_kretprobe(event=t.exit, fn_name=exit_fn)
    except BaseException:
        b.cleanup()
        raise
    return b


def entry_functions(count: int, body: str = "return on_entry(ctx, {n});") -> str:
    """One probe function per target, ``trace_entry_N``, each calling the shared entry code with N."""
    one = "\nint trace_entry_{n}(struct pt_regs *ctx)\n{{\n    " + body + "\n}}\n"
    return "".join(one.format(n=n) for n in range(count))


def add_histogram_options(p: argparse.ArgumentParser) -> None:
    """funclatency's and funcinterval's -p, -i, -d, -T, -u and -m, as bcc's two tools have them."""
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-i", "--interval", type=common.positive_int, help="summary interval, in seconds")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace, in seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-u", "--microseconds", action="store_true", help="microsecond histogram")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")


def units(args: argparse.Namespace) -> tuple[str, int]:
    """The histogram's label and nanoseconds per unit (-m wins over -u, as in bcc)."""
    if args.milliseconds:
        return "msecs", 1000000
    if args.microseconds:
        return "usecs", 1000
    return "nsecs", 1


def scale_c(args: argparse.Namespace) -> str:
    """The C statement that turns ``delta`` (nanoseconds) into -u/-m's unit; none for nanoseconds."""
    per_unit = units(args)[1]
    return f"delta /= {per_unit};" if per_unit > 1 else ""


def printed_only(args: argparse.Namespace, text: str, pattern: PatternSpec, alternative: str) -> bool:
    """Print the C under -v or --ebpf, and say whether the tool stops there (--ebpf); otherwise check
    first that this kernel can attach the pattern (:func:`need_kernel_functions`, with ``alternative``)."""
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return True
    need_kernel_functions(pattern, alternative)
    return False


def print_histograms(args: argparse.Namespace, show: Callable[[], None], tables: Sequence[Any]) -> None:
    """funclatency's and funcinterval's outputs, as bcc's: every -i seconds (else once, at the end of -d
    or at Ctrl-C) a blank line, the time under -T and what ``show`` prints; then ``tables`` are emptied,
    so that each output covers its interval only, and the last is followed by "Detaching..."."""
    interval, count = counting.schedule(args.interval, args.duration)
    for last in counting.outputs(interval, count):
        print()
        if args.timestamp:
            print("%-8s" % common.strftime_now())
        show()
        for table in tables:
            table.clear()
        sys.stdout.flush()
        if last:
            print("Detaching...")
