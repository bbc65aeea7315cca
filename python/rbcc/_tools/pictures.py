"""The tools' pictures: ``--svg FILE`` of the stack tools (profile, offcputime, wakeuptime, stackcount,
trace -K/-U), a flame graph of the stacks they count, drawn by the core with inferno; and ``--heatmap
FILE`` of the latency tools (biolatency, runqlat), their histogram sampled every ``--heatmap-interval``
seconds into a heatmap (matplotlib). Both are written when the tool ends, besides its usual output,
which stays bcc's (``-f`` keeps bcc's folded lines byte for byte)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from .._pictures.flame import KERNEL_ANNOTATION, flamegraph
from .._pictures.series import HistogramSeries
from . import common


def _writable(suffixes: tuple[str, ...]) -> Any:
    """An argparse type: a path with one of ``suffixes`` whose directory exists and is writable, so a
    typo fails at once, not after the trace."""

    def check(text: str) -> str:
        if suffixes and os.path.splitext(text)[1].lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"the file must end in {' or '.join(suffixes)}")
        folder = os.path.dirname(os.path.abspath(text))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise argparse.ArgumentTypeError(f"cannot write into {folder}")
        return text

    return check


def add_svg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--svg",
        metavar="FILE",
        type=_writable((".svg",)),
        help="also draw the stacks as a flame graph into FILE (an SVG, drawn by rbcc) when tracing ends",
    )


def annotated(frames: Sequence[str]) -> list[str]:
    """Kernel frames marked ``_[k]``, for the flame graph's colours (once, whatever -a did)."""
    return [f if f.endswith(KERNEL_ANNOTATION) else f + KERNEL_ANNOTATION for f in frames]


class FlameSink:
    """The stacks a tool reports, added up, drawn into ``path`` by ``write()``."""

    def __init__(self, prog: str, path: str, *, title: str, count_name: str, palette: str | None = None) -> None:
        self.prog = prog
        self.path = path
        self.title = title
        self.count_name = count_name
        self.palette = palette
        self.stacks: Counter[str] = Counter()

    def add(self, frames: Sequence[str], count: int) -> None:
        """One stack, root first, counted ``count`` times more."""
        self.stacks[";".join(frames)] += count

    def write(self, subtitle: str | None = None) -> None:
        graph = flamegraph(
            [f"{s} {n}" for s, n in self.stacks.items()],
            title=self.title,
            subtitle=subtitle,
            palette=self.palette,
            count_name=self.count_name,
        )
        graph.save(self.path)
        print(f"{self.prog}: flame graph of {graph.samples} {self.count_name} written to {self.path}", file=sys.stderr)


def flame_sink(args: argparse.Namespace, prog: str, **kwargs: Any) -> FlameSink | None:
    """The sink of ``--svg`` (None without it): ``title=``, ``count_name=``, ``palette=`` (None: kernel
    frames apart where they are annotated)."""
    path = getattr(args, "svg", None)
    return FlameSink(prog, path, **kwargs) if path else None


def add_heatmap(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--heatmap",
        metavar="FILE",
        type=_writable((".png", ".svg")),
        help="also draw a latency heatmap into FILE (.png or .svg) when tracing ends: time across, "
        "log2 buckets up, colour the count",
    )
    p.add_argument(
        "--heatmap-interval",
        metavar="SECS",
        type=float,
        default=1.0,
        help="seconds per heatmap column (default 1)",
    )


def check_heatmap(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse --heatmap where it cannot be drawn, before tracing."""
    if not args.heatmap:
        return
    if args.heatmap_interval <= 0:
        p.error("--heatmap-interval must be positive")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        p.error("--heatmap needs matplotlib: pip install matplotlib (or rbcc[notebook])")


@contextlib.contextmanager
def heatmap_intervals(
    args: argparse.Namespace, prog: str, table: Any, val_type: str, title: str
) -> Iterator[Iterator[bool]]:
    """The tool's print loop (``common.intervals(args.interval, args.count)``, the tool clearing the
    table after each print); under ``--heatmap``, the table sampled into a heatmap meanwhile, written
    to the file when the loop ends."""
    if not args.heatmap:
        yield common.intervals(args.interval, args.count)
        return
    series = HistogramSeries(table, args.heatmap_interval, val_type, title)
    try:
        yield series.intervals(args.interval, args.count, clears=True)
    finally:
        heatmap = series.heatmap()
        heatmap.save(args.heatmap)
        print(
            f"{prog}: heatmap of {heatmap.counts.shape[0]} x {heatmap.interval:g}s written to {args.heatmap}",
            file=sys.stderr,
        )
