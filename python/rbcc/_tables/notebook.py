"""Maps and events in notebooks: DataFrames of structured arrays, and histograms that print as bcc
prints them, convert to numpy and pandas, and draw themselves in Jupyter.

pandas and matplotlib are optional (``pip install rbcc[notebook]``): what needs one says so when it is
missing; a histogram without matplotlib shows as bcc's text.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import hist

__all__ = ["Histogram", "frame"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:
        raise ImportError("DataFrames need pandas: pip install pandas (or rbcc[notebook])") from e
    return pandas


def _columns(out: dict[str, Any], name: str, arr: Any) -> None:
    """Add ``arr``'s columns under ``name``: one per field of a struct (recursively, ``name.field``;
    anonymous members without a name of their own), strings decoded, sub-arrays as one list per row."""
    fields = arr.dtype.names
    if fields:
        for field in fields:
            label = field if name == "" else f"{name}.{field}"
            _columns(out, name if field.startswith("__anon_") else label, arr[field])
        return
    if arr.dtype.kind == "S":
        out[name] = [b.decode("utf-8", "replace") for b in arr.tolist()]
    elif arr.ndim > 1:
        out[name] = list(arr)
    else:
        out[name] = arr


def frame(keys: Any, values: Any | None = None, **extra: Any) -> Any:
    """A DataFrame of structured arrays: ``frame(events)``, or ``frame(keys, values)`` of a table. A
    struct's fields become columns (nested ones ``outer.inner``), a plain array the ``key``/``value``
    column; where a key field and a value field share a name both are prefixed with ``key.``/``value.``.
    ``extra`` adds columns (``cpu=...``)."""
    pd = _pandas()
    if values is None:
        cols: dict[str, Any] = {}
        _columns(cols, "" if keys.dtype.names else "value", keys)
        cols.update(extra)
        return pd.DataFrame(cols)
    key_cols: dict[str, Any] = {}
    value_cols: dict[str, Any] = {}
    _columns(key_cols, "" if keys.dtype.names else "key", keys)
    _columns(value_cols, "" if values.dtype.names else "value", values)
    clash = key_cols.keys() & value_cols.keys()
    cols = {f"key.{k}" if k in clash else k: v for k, v in key_cols.items()}
    cols.update({f"value.{k}" if k in clash else k: v for k, v in value_cols.items()})
    cols.update(extra)
    return pd.DataFrame(cols)


@dataclass
class Histogram:
    """A log2 or linear histogram: ``counts[i]`` is slot i's count. A log2 slot i holds values from
    2**(i-1) to 2**i - 1 (slot 1 also 0), a linear slot i the value i, as bcc's helpers fill them.

    ``str()`` (and Jupyter without matplotlib) gives bcc's text; ``to_pandas()`` a row per slot up to
    the last non-empty one; ``plot()`` a bar chart, which Jupyter shows for the object itself."""

    counts: Any  # numpy array of int64
    kind: str = "log2"
    val_type: str = "value"
    title: str | None = None

    def _shown(self) -> range:
        """The slots bcc prints: up to the last non-empty one (a log2 histogram from slot 1)."""
        nonzero = self.counts.nonzero()[0]
        last = int(nonzero[-1]) if len(nonzero) else -1
        return range(1 if self.kind == "log2" else 0, last + 1)

    @property
    def low(self) -> Any:
        """Each slot's smallest value."""
        import numpy as np

        slots = np.arange(len(self.counts), dtype=np.uint64)
        if self.kind != "log2":
            return slots
        return np.array([0 if i <= 1 else 1 << (i - 1) for i in range(len(self.counts))], dtype=np.uint64)

    @property
    def high(self) -> Any:
        """Each slot's largest value."""
        import numpy as np

        if self.kind != "log2":
            return np.arange(len(self.counts), dtype=np.uint64)
        return np.array([(1 << i) - 1 for i in range(len(self.counts))], dtype=np.uint64)

    def lines(self) -> list[str]:
        """bcc's text lines for it (print_log2_hist / print_linear_hist)."""
        draw = hist.log2_hist_lines if self.kind == "log2" else hist.linear_hist_lines
        return draw([int(c) for c in self.counts], self.val_type)

    def __str__(self) -> str:
        head = [self.title] if self.title else []
        return "\n".join(head + self.lines())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def to_pandas(self) -> Any:
        """A row per slot bcc would print: ``low``, ``high`` and ``count``."""
        shown = list(self._shown())
        return (
            _pandas()
            .DataFrame({"low": self.low[shown], "high": self.high[shown], "count": self.counts[shown]})
            .rename_axis(self.val_type)
        )

    def plot(self, ax: Any = None) -> Any:
        """A bar chart of the slots bcc would print, labelled with their ranges, on ``ax`` (a new figure's
        axes by default); returns the axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("plots need matplotlib: pip install matplotlib (or rbcc[notebook])") from e
        shown = list(self._shown())
        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3))
        labels = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in zip(self.low[shown], self.high[shown])]
        ax.bar(range(len(shown)), self.counts[shown])
        ax.set_xticks(range(len(shown)), labels, rotation=45, ha="right")
        ax.set_xlabel(self.val_type)
        ax.set_ylabel("count")
        if self.title:
            ax.set_title(self.title)
        return ax

    def _repr_png_(self) -> bytes | None:
        try:
            from matplotlib.figure import Figure
        except ImportError:
            return None  # Jupyter falls back to the text
        fig = Figure(figsize=(8, 3))
        self.plot(fig.add_subplot())
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()


def histogram(slots: dict[int, int], kind: str, val_type: str, title: str | None = None) -> Histogram:
    """A Histogram of {slot: count}, as long as bcc's array for that kind (65 log2 slots)."""
    counts: Sequence[int] = hist.slots_to_list(slots, hist.LOG2_INDEX_MAX if kind == "log2" else 1)
    import numpy as np

    return Histogram(np.array(counts, dtype=np.int64), kind, val_type, title)
