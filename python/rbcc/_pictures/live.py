"""A live view for notebooks: a histogram table redrawn in place every interval until the cell is
interrupted (Jupyter's stop button is a KeyboardInterrupt in the kernel), or a given number of times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .series import HistogramSeries, ticks, total_counts

__all__ = ["live"]


def _shower(first: Any) -> Callable[[Any], None]:
    """Show ``first`` and return how to show what replaces it: in place in Jupyter (a display id),
    printed one after the other elsewhere."""
    try:
        import IPython.display
    except ImportError:
        print(first)
        return print
    display: Any = IPython.display.display  # (IPython leaves it untyped)
    handle = display(first, display_id=True)
    if handle is None:  # IPython without a frontend that updates outputs
        return lambda shown: display(shown)
    return lambda shown: handle.update(shown)


def live(
    table: Any,
    interval: float = 1.0,
    *,
    val_type: str = "value",
    count: int | None = None,
    heatmap: bool = False,
    clear: bool = False,
    title: str | None = None,
) -> None:
    """Redraw ``table``'s histogram (``to_histogram(val_type)``, sections added up) every ``interval``
    seconds until the cell is interrupted, or ``count`` times: ``rbcc.notebook.live(b["dist"])``.

    With ``heatmap``, a latency heatmap that grows a column per interval instead; with ``clear``, the
    table is cleared after each drawing, so each shows one interval (as bcc's tools print them)."""
    from .._tables.notebook import Histogram

    series = HistogramSeries(table, interval, val_type, title) if heatmap else None

    def current() -> Any:
        if series is not None:
            return series.heatmap()
        shown = Histogram(total_counts(table.to_histogram(val_type)), "log2", val_type, title)
        if clear:
            table.clear()
        return shown

    show = _shower(current())
    try:
        if series is not None:
            for _ in series.intervals(interval, count, clears=clear):
                show(current())
                if clear:
                    table.clear()
            return
        for _ in ticks(interval, count):
            show(current())
    except KeyboardInterrupt:  # stopped while drawing rather than waiting: the same request
        pass
