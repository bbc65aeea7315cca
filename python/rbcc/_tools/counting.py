"""What funccount and stackcount share: a pattern's targets (kernel functions, a binary's functions,
tracepoints, USDT probes), the C with one counting function per target, and attaching them."""

from __future__ import annotations

import argparse
import re
import signal
from collections.abc import Callable, Iterator, Sequence

from .. import BPF, USDT, _core
from .._probes.uprobes import functions_matching, resolve_binary
from .._specs.gen import count_program
from .._specs.pattern import PatternSpec, parse_pattern
from ..errors import AttachError, KernelFeatureError
from . import common

# bcc's limit on probes per run (perf events, file descriptors)
PROBE_LIMIT = 1000


def targets(pattern: PatternSpec, pid: int | None = None) -> list[str]:
    """The names the pattern matches: "category:event" for tracepoints, function or probe names."""
    if pattern.kind == "t":
        found = [tp for tp in BPF.get_tracepoints() if pattern.matches(tp)]
    elif pattern.kind == "u":
        usdt = USDT(path=pattern.library, pid=pid)
        found = sorted({p.name.decode() for p in usdt.enumerate_probes() if pattern.matches(p.name.decode())})
    elif pattern.library:
        found = [name for name, _ in functions_matching(resolve_binary(pattern.library, pid or -1), pattern.regex)]
    else:
        found = BPF._kernel_functions(pattern.regex)
    if not found:
        raise AttachError(f"No functions matched by pattern {pattern.pattern}")
    if len(found) > PROBE_LIMIT:
        raise AttachError(f"maximum of {PROBE_LIMIT} probes allowed, attempted {len(found)}")
    return found


def ctx_type(pattern: PatternSpec, names: Sequence[str]) -> str:
    """The probe functions' context: tracepoint programs for tracepoints (any one tracepoint's struct does,
    as the counters never read it), pt_regs for the rest."""
    if pattern.kind == "t" and names:
        category, _, event = names[0].partition(":")
        return f"struct tracepoint__{category}__{event} *args"
    return "struct pt_regs *ctx"


def program(pattern: PatternSpec, names: Sequence[str], **options: object) -> str:
    return count_program(pattern, names, ctx_type=ctx_type(pattern, names), **options)  # type: ignore[arg-type]


def load(pattern: PatternSpec, names: Sequence[str], text: str, pid: int | None) -> BPF:
    """Load the program and attach function ``trace_count_N`` to target N."""
    if pattern.kind == "p" and not pattern.library and not _core.has_kprobes():
        raise KernelFeatureError(
            "kernel function patterns need kprobes, which this kernel lacks (CONFIG_KPROBES is not set); "
            "count a tracepoint pattern (t:category:event, e.g. t:syscalls:sys_enter_*) instead",
            feature="kprobes",
            alternative="a tracepoint pattern (t:category:event)",
        )
    usdt = None
    if pattern.kind == "u":
        usdt = USDT(path=pattern.library, pid=pid)
        for n, name in enumerate(names):
            usdt.enable_probe(name, f"trace_count_{n}")
    b = BPF(text=text, usdt_contexts=[usdt] if usdt else [])
    for n, name in enumerate(names):
        fn = f"trace_count_{n}"
        if pattern.kind == "t":
            b.attach_tracepoint(tp=name, fn_name=fn)
        elif pattern.kind == "p" and pattern.library:
            b.attach_uprobe(name=pattern.library, sym=name, fn_name=fn, pid=pid or -1)
        elif pattern.kind == "p":
            b.attach_kprobe(event=name, fn_name=fn)
    return b


def start(
    args: argparse.Namespace, build_text: Callable[[argparse.Namespace, Sequence[str]], str]
) -> tuple[list[str], BPF | None]:
    """The targets of ``args.pattern`` and the program ``build_text`` makes for them, loaded and attached;
    the C printed first under -D, instead of loading under --ebpf (then None)."""
    pattern = parse_pattern(args.pattern, args.regexp)
    names = targets(pattern, args.pid)
    text = build_text(args, names)
    if args.debug or args.ebpf:
        print(text)
        if args.ebpf:
            return names, None
    return names, load(pattern, names, text, args.pid)


def outputs(interval: float, count: int | None) -> Iterator[bool]:
    """:func:`common.intervals`, Ctrl-C ignored from the last one on (the final output must finish)."""
    for last in common.intervals(interval, count):
        if last:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        yield last


def display_pattern(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def schedule(interval: int | None, duration: int | None) -> tuple[float, int | None]:
    """(seconds between outputs, number of outputs or None for until Ctrl-C), from -i and -d as bcc reads
    them: -d alone prints once at its end; neither prints once, at Ctrl-C."""
    if interval is None:
        return (duration, 1) if duration else (99999999, None)
    return interval, (-(-duration // interval) if duration else None)
