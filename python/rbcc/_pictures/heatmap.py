"""Latency heatmaps: time across, log2 buckets up (bcc's histogram slots), colour the count of each
bucket in each interval, as in Brendan Gregg's latency heatmaps. Made from events (a time and a value
each) or from a histogram sampled every interval (``series.HistogramSeries``); drawn with matplotlib
(optional, ``pip install rbcc[notebook]``), with a text picture where it is missing.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Heatmap", "log2_slots", "slot_label"]

# light to dark: a cell's share of the busiest cell, in the text picture
SHADES = " .:-=+*#%@"
TEXT_COLUMNS = 100
# empty cells stay white; counted ones run yellow to red, as Gregg's heatmaps do
COLOURS = "YlOrRd"


def _numpy() -> Any:
    import numpy

    return numpy


def log2_slots(values: Any) -> Any:
    """bcc's ``bpf_log2l`` of each value: 0 for 0, else the bit length (slot i holds 2**(i-1) to
    2**i - 1); negative values count as 0, fractions are cut."""
    np = _numpy()
    v = np.asarray(values)
    if v.dtype.kind == "f":
        v = np.floor(np.clip(v, 0, 2.0**64 - 1))
    v = np.clip(v, 0, None).astype(np.uint64)
    slots = np.zeros(v.shape, dtype=np.int64)
    # the bit length by shifting (exact for every 64-bit value, where log2 of a float is not)
    while v.any():
        slots += v > 0
        v = v >> np.uint64(1)
    return slots


def slot_label(slot: int, kind: str = "log2") -> str:
    """A slot's range as the axis shows it: "0-1", "2-3", "4-7", ...; a linear slot its value."""
    if kind != "log2":
        return str(slot)
    if slot == 0:
        return "0"
    low, high = (1 << slot) >> 1, (1 << slot) - 1
    return f"{0 if slot == 1 else low}-{high}"


def _matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("heatmaps need matplotlib: pip install matplotlib (or rbcc[notebook])") from e
    return Figure


@dataclass
class Heatmap:
    """``counts[column, slot]``: how many values fell in ``slot`` during column's interval (column i
    covers ``i * interval`` to ``(i + 1) * interval`` seconds from the start).

    Jupyter shows it as a PNG; ``str()`` is a text picture; ``save(path)`` writes a PNG or an SVG."""

    counts: Any  # numpy int64 array, (columns, slots)
    interval: float = 1.0
    val_type: str = "value"
    title: str | None = None
    kind: str = "log2"

    @classmethod
    def from_events(
        cls,
        times: Any,
        values: Any,
        interval: float = 1.0,
        val_type: str = "value",
        title: str | None = None,
        start: float | None = None,
    ) -> Heatmap:
        """A heatmap of events: ``times`` in seconds (from any origin; ``start`` is the first column's,
        the earliest time by default) and ``values`` bucketed in log2 slots, e.g. from a ``collect()``ed
        array: ``Heatmap.from_events(ev["ts"] / 1e9, ev["ns"] // 1000, val_type="usecs")``."""
        np = _numpy()
        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        t = np.asarray(times, dtype=np.float64)
        slots = log2_slots(values)
        if t.shape != slots.shape:
            raise ValueError(f"{t.size} times for {slots.size} values")
        if not t.size:
            return cls(np.zeros((0, 1), dtype=np.int64), interval, val_type, title)
        origin = float(t.min()) if start is None else start
        keep = t >= origin
        columns = np.floor((t[keep] - origin) / interval).astype(np.int64)
        counts = np.zeros((int(columns.max()) + 1 if columns.size else 0, int(slots.max()) + 1), dtype=np.int64)
        np.add.at(counts, (columns, slots[keep]), 1)
        return cls(counts, interval, val_type, title)

    @classmethod
    def from_histograms(
        cls, columns: Iterable[Any], interval: float = 1.0, val_type: str = "value", title: str | None = None
    ) -> Heatmap:
        """A heatmap with a column per histogram (a ``Histogram`` or a sequence of slot counts), each
        ``interval`` seconds long."""
        np = _numpy()
        rows = [np.asarray(getattr(c, "counts", c), dtype=np.int64) for c in columns]
        width = max((len(r) for r in rows), default=1)
        counts = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            counts[i, : len(r)] = r
        return cls(counts, interval, val_type, title)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def _rows(self) -> list[int]:
        """The slots drawn: from the lowest counted to the highest (none when nothing was)."""
        counted = self.counts.sum(axis=0).nonzero()[0] if self.counts.size else []
        if not len(counted):
            return []
        return list(range(int(counted[0]), int(counted[-1]) + 1))

    def plot(self, ax: Any) -> Any:
        """Draw it on matplotlib axes ``ax``; returns the colour mesh (None when nothing was counted)."""
        np = _numpy()
        rows = self._rows()
        columns = self.counts.shape[0]
        ax.set_xlabel("time (s)")
        ax.set_ylabel(self.val_type)
        if self.title:
            ax.set_title(self.title)
        if not rows or not columns:
            ax.text(0.5, 0.5, "nothing counted", ha="center", va="center", transform=ax.transAxes)
            return None
        cells = np.ma.masked_equal(self.counts[:, rows].T, 0)
        x = np.arange(columns + 1) * self.interval
        mesh = ax.pcolormesh(x, np.arange(len(rows) + 1), cells, cmap=COLOURS, shading="flat")
        step = max(1, math.ceil(len(rows) / 16))  # no more labels than fit
        ticks = list(range(0, len(rows), step))
        ax.set_yticks([t + 0.5 for t in ticks], [slot_label(rows[t], self.kind) for t in ticks])
        return mesh

    def figure(self) -> Any:
        """A matplotlib Figure of it (not registered with pyplot: nothing global is touched)."""
        figure = _matplotlib()(figsize=(9, 4))
        ax = figure.add_subplot()
        mesh = self.plot(ax)
        if mesh is not None:
            figure.colorbar(mesh, ax=ax, label="count")
        figure.tight_layout()
        return figure

    def _render(self, fmt: str) -> bytes:
        out = io.BytesIO()
        self.figure().savefig(out, format=fmt)
        return out.getvalue()

    def png(self) -> bytes:
        return self._render("png")

    def svg(self) -> str:
        return self._render("svg").decode("utf-8")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write it as a PNG or an SVG, as the file's suffix says."""
        suffix = os.path.splitext(os.fspath(path))[1].lower()
        if suffix not in (".png", ".svg"):
            raise ValueError(f"a heatmap is saved as .png or .svg, not {suffix or 'a file without a suffix'!r}")
        with open(path, "wb") as f:
            f.write(self._render(suffix[1:]))

    def lines(self) -> list[str]:
        """The text picture: a row per slot (highest first), a character per column (the last
        ``TEXT_COLUMNS``), darker for more."""
        rows = self._rows()
        head = [f"{self.title}: " if self.title else ""]
        head[0] += f"{self.total} counted in {self.counts.shape[0]} x {self.interval:g}s"
        if not rows:
            return head
        cells = self.counts[-TEXT_COLUMNS:, :]
        peak = int(cells.max()) or 1
        width = max(len(self.val_type), *(len(slot_label(r, self.kind)) for r in rows))
        out = head + [f"{self.val_type:>{width}} |"]
        for r in reversed(rows):
            shades = "".join(SHADES[math.ceil(int(c) * (len(SHADES) - 1) / peak)] for c in cells[:, r])
            out.append(f"{slot_label(r, self.kind):>{width}} |{shades}")
        out.append(" " * width + " +" + "-" * cells.shape[0] + "> time")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_png_(self) -> bytes | None:
        try:
            _matplotlib()
        except ImportError:
            return None  # Jupyter falls back to the text
        return self.png()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": str(self)}
        picture = self._repr_png_()
        if picture is not None:
            # Jupyter's messages carry binary images as base64 text
            bundle["image/png"] = base64.b64encode(picture).decode("ascii")
        return bundle
