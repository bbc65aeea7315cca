"""Flame graphs: stacks and their counts, as folded lines (``comm;outer;...;inner count``, what bcc's
tools print with ``-f``), drawn as an interactive SVG by the core (the Rust ``inferno`` crate, a port of
Brendan Gregg's flamegraph.pl).

Kernel frames carry the ``_[k]`` suffix bcc's ``profile -a`` gives them; the "java" palette (chosen by
default when a frame carries it) paints them orange, user frames red and yellow, and the SVG shows the
names without the suffix. Off-CPU graphs use the blue "io" palette, wakeup graphs "wakeup", as Gregg's do.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KERNEL_ANNOTATION", "FlameGraph", "flamegraph", "fold_stacks", "folded_lines", "palettes"]

KERNEL_ANNOTATION = "_[k]"

# the names bcc's tools give a key's fields, tried in this order
KERNEL_FIELDS = ("kernel_stack_id", "kernel_stack", "kern_stack_id", "kstack_id", "kstack", "k_stack_id")
USER_FIELDS = ("user_stack_id", "user_stack", "ustack_id", "ustack", "u_stack_id")
PID_FIELDS = ("tgid", "pid")
NAME_FIELDS = ("name", "comm", "task")


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


def _stack_text(frames: Any) -> str:
    """A stack as the frames part of a folded line: a str or bytes as it is, a sequence of frames (root
    first) joined with ';'."""
    if isinstance(frames, (str, bytes, bytearray)):
        return _text(frames)
    return ";".join(_text(f) for f in frames)


def folded_lines(stacks: Any) -> list[str]:
    """Folded lines from what ``flamegraph`` takes: folded text (str or bytes, one stack a line), an
    iterable of folded lines or of ``(frames, count)`` pairs, or a mapping of stack to count, where a
    stack is folded text (``"main;f;g"``) or a sequence of frames, root first."""
    if isinstance(stacks, (bytes, bytearray)):
        stacks = bytes(stacks).decode("utf-8", "replace")
    if isinstance(stacks, str):
        return [line for line in stacks.splitlines() if line.strip()]
    items: Iterable[Any] = stacks.items() if isinstance(stacks, Mapping) else stacks
    lines = []
    for item in items:
        if isinstance(item, (str, bytes, bytearray)):
            line = _text(item).rstrip("\n")
            if line.strip():
                lines.append(line)
            continue
        frames, count = item
        lines.append(f"{_stack_text(frames)} {int(getattr(count, 'value', count))}")
    return lines


def _count(line: str) -> int | None:
    """The sample count of a folded line; None if it has none."""
    _, _, tail = line.rpartition(" ")
    try:
        return int(tail)
    except ValueError:
        return None


def _annotated(line: str) -> bool:
    """Whether a folded line holds a kernel frame marked as such."""
    return KERNEL_ANNOTATION + ";" in line or KERNEL_ANNOTATION + " " in line


def _deannotate(frame: str) -> str:
    if len(frame) > 4 and frame[-4:-2] == "_[" and frame[-1] == "]" and frame[-2] in "kwij":
        return frame[:-4]
    return frame


@dataclass
class FlameGraph:
    """A flame graph: its SVG (``svg``, drawn by inferno) and the folded lines it was drawn from.

    Jupyter shows the SVG (``_repr_svg_``; hover a frame for its count, click to zoom); ``str()`` is a
    text summary; ``save(path)`` writes the SVG."""

    svg: str
    folded: list[str] = field(repr=False)
    title: str = "Flame Graph"
    count_name: str = "samples"

    @property
    def samples(self) -> int:
        """The counts of every stack, added up."""
        return sum(c for c in map(_count, self.folded) if c)

    def hottest(self, n: int = 5) -> list[tuple[str, int]]:
        """The ``n`` innermost frames with the most samples (of their own, not their callees')."""
        leaves: Counter[str] = Counter()
        for line in self.folded:
            count = _count(line)
            if count:
                leaves[_deannotate(line.rpartition(" ")[0].rsplit(";", 1)[-1])] += count
        return leaves.most_common(n)

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)

    def __str__(self) -> str:
        total = self.samples
        if not total:
            return f"{self.title}: nothing counted"
        lines = [f"{self.title}: {total} {self.count_name} in {len(self.folded)} stacks; hottest frames:"]
        lines += [f"  {count:>10} {100 * count / total:5.1f}%  {frame}" for frame, count in self.hottest()]
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"image/svg+xml": self.svg, "text/plain": str(self)}


def palettes() -> list[str]:
    """The palette names ``flamegraph`` takes (flamegraph.pl's ``--colors``)."""
    from .. import _core

    return _core.flamegraph_palettes()


def flamegraph(
    stacks: Any,
    *,
    stack_traces: Any = None,
    title: str = "Flame Graph",
    subtitle: str | None = None,
    palette: str | None = None,
    count_name: str = "samples",
    width: int | None = None,
    inverted: bool = False,
    min_width: float = 0.1,
) -> FlameGraph:
    """A flame graph of ``stacks``: folded text or lines, ``(frames, count)`` pairs or a mapping of stack
    to count (see ``folded_lines``); or, with ``stack_traces`` (a BPF_STACK_TRACE table), a table that
    counts stack ids (see ``fold_stacks``).

    ``palette`` is one of ``palettes()``; by default "java" where a frame carries the kernel annotation
    ``_[k]`` (kernel frames orange, user frames warm), else "hot". ``count_name`` says what a count is
    ("samples", "us"); ``width`` is in pixels (1200 by default); ``inverted`` draws an icicle graph;
    frames narrower than ``min_width`` pixels are left out."""
    from .. import _core

    lines = fold_stacks(stacks, stack_traces) if stack_traces is not None else folded_lines(stacks)
    if palette is None:
        palette = "java" if any(_annotated(line) for line in lines) else "hot"
    svg = _core.flamegraph_svg(
        lines,
        title=title,
        subtitle=subtitle,
        palette=palette,
        count_name=count_name,
        width=width,
        inverted=inverted,
        min_width=min_width,
        notes="drawn by rbcc with inferno",
    )
    return FlameGraph(svg.decode("utf-8"), lines, title, count_name)


def _first(names: Sequence[str], fields: Sequence[str]) -> str | None:
    return next((f for f in fields if f in names), None)


def _walk(stack_traces: Any, stack_id: int) -> list[int] | None:
    """The stack's addresses, innermost first; None when there is no stack to show (a kernel thread's
    user side: -EFAULT), ``[]`` when it was lost (a placeholder frame stands for it)."""
    if stack_id == -errno.EFAULT:
        return None
    if stack_id < 0:
        return []
    try:
        return list(stack_traces.walk(stack_id))
    except KeyError:  # evicted from the stack map since it was counted
        return []


def _frames(bpf: Any, stack_traces: Any, key: Any, annotate: bool) -> list[str]:
    """A counted key's frames, root first: its process name, user frames, then kernel frames."""
    names = [f[0] for f in getattr(type(key), "_fields_", ())]
    if not names:  # the key is the stack id itself: a kernel stack (bcc's stackcount-style maps)
        addrs = _walk(stack_traces, int(getattr(key, "value", key)))
        if addrs is None:
            return []
        return [_text(bpf.ksym(a)) for a in reversed(addrs)] or ["[Missed Kernel Stack]"]
    kfield, ufield = _first(names, KERNEL_FIELDS), _first(names, USER_FIELDS)
    pid_field, name_field = _first(names, PID_FIELDS), _first(names, NAME_FIELDS)
    frames = [_text(getattr(key, name_field))] if name_field else []
    if ufield is not None:
        addrs = _walk(stack_traces, getattr(key, ufield))
        pid = getattr(key, pid_field) if pid_field else -1
        if addrs is not None:
            frames += [_text(bpf.sym(a, pid)) for a in reversed(addrs)] or ["[Missed User Stack]"]
    if kfield is not None:
        # annotated only where user frames could be mistaken for them
        suffix = KERNEL_ANNOTATION if annotate and ufield is not None else ""
        addrs = _walk(stack_traces, getattr(key, kfield))
        if addrs is not None:
            frames += [_text(bpf.ksym(a)) + suffix for a in reversed(addrs)] or ["[Missed Kernel Stack]"]
    return frames


def fold_stacks(counts: Any, stack_traces: Any, *, annotate: bool = True) -> list[str]:
    """Folded lines of a table that counts stacks (``counts[key] = n``), their ids resolved in
    ``stack_traces`` (its BPF_STACK_TRACE table) and symbolized by the tables' BPF object.

    A key is a stack id (a kernel stack), or a struct with bcc's field names: ``kernel_stack_id`` and/or
    ``user_stack_id`` (user addresses symbolized in the key's ``tgid`` or ``pid``), and ``name`` or
    ``comm`` as the root frame. Where a key has both stacks, kernel frames get the ``_[k]`` suffix unless
    ``annotate`` is false. Stacks that fold alike are added up; lines come least counted first."""
    bpf = stack_traces.bpf
    merged: Counter[str] = Counter()
    for key, value in counts.items():
        frames = _frames(bpf, stack_traces, key, annotate)
        if frames:
            merged[";".join(frames)] += int(getattr(value, "value", value))
    return [f"{stack} {n}" for stack, n in sorted(merged.items(), key=lambda kv: (kv[1], kv[0]))]
