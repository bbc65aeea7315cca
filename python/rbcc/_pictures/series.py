"""A histogram table sampled every interval: each sample's growth since the last one becomes a column of
a latency heatmap. What the tools' ``--heatmap`` and the notebooks' live heatmap share."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .heatmap import Heatmap

__all__ = ["HistogramSeries", "ticks", "total_counts"]


def total_counts(histograms: Any) -> Any:
    """The slot counts of a ``to_histogram()`` result, its sections (a struct-keyed table's
    ``{bucket: Histogram}``) added up."""
    import numpy as np

    hists = list(histograms.values()) if isinstance(histograms, Mapping) else [histograms]
    total = np.zeros(max((len(h.counts) for h in hists), default=1), dtype=np.int64)
    for h in hists:
        total[: len(h.counts)] += np.asarray(h.counts, dtype=np.int64)
    return total


def ticks(interval: float, count: int | None = None, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
    """Every ``interval`` seconds from now (``count`` times, forever if None), the tick's nominal time;
    a late wake-up does not shift later ticks. Ctrl-C during a wait ends it quietly."""
    start = clock()
    done = 0
    while count is None or done < count:
        done += 1
        due = start + done * interval
        try:
            time.sleep(max(0.0, due - clock()))
        except KeyboardInterrupt:
            return
        yield due


class HistogramSeries:
    """A histogram table (``BPF_HISTOGRAM``, or any table with ``to_histogram()``) read every
    ``interval`` seconds; each reading's growth since the one before is added to the heatmap column of
    its time. The table is only read: where its owner clears it between readings, ``cleared()`` says so
    (a reading below the last one is taken as a clear too).

    ``run(10)`` samples for 10 seconds; ``sample()`` takes one reading now; ``heatmap()`` is the
    picture so far, which Jupyter also shows for the series itself."""

    def __init__(
        self,
        table: Any,
        interval: float = 1.0,
        val_type: str = "value",
        title: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import numpy as np

        if interval <= 0:
            raise ValueError(f"interval must be positive, not {interval}")
        self.table = table
        self.interval = interval
        self.val_type = val_type
        self.title = title
        self._clock = clock
        self.start = clock()
        self._baseline = np.zeros(0, dtype=np.int64)
        self._columns: list[Any] = []

    def read(self) -> Any:
        """The table's slot counts now, its sections added up."""
        return total_counts(self.table.to_histogram(self.val_type))

    def sample(self, now: float | None = None) -> Any:
        """Read the table and add what it gained to the column of time ``now`` (the clock's, by
        default; a reading at a column's very end belongs to that column). Returns the gain."""
        import numpy as np

        at = self._clock() if now is None else now
        counts = self.read()
        base = np.zeros(len(counts), dtype=np.int64)
        base[: min(len(counts), len(self._baseline))] = self._baseline[: len(counts)]
        gain = counts - base
        if (gain < 0).any():  # cleared since the last reading without a word: all of it is new
            gain = counts
        self._baseline = counts
        # (less a hair, so that float error does not push a column's last reading into the next)
        column = max(0, math.ceil((at - self.start) / self.interval - 1e-9) - 1)
        while len(self._columns) <= column:
            self._columns.append(np.zeros(len(counts), dtype=np.int64))
        have = self._columns[column]
        if len(have) < len(gain):
            have = np.concatenate([have, np.zeros(len(gain) - len(have), dtype=np.int64)])
        have[: len(gain)] += gain
        self._columns[column] = have
        return gain

    def cleared(self) -> None:
        """The table was just cleared: counting starts again from zero."""
        import numpy as np

        self._baseline = np.zeros(0, dtype=np.int64)

    def run(self, duration: float | None = None) -> Heatmap:
        """Sample at every column's end for ``duration`` seconds (until Ctrl-C if None); the heatmap."""
        for _ in self.intervals(math.inf if duration is None else duration, 1, clears=False):
            pass
        return self.heatmap()

    def intervals(self, every: float, count: int | None, *, clears: bool = True) -> Iterator[bool]:
        """A tool's print loop (as ``_tools.common.intervals``): yields after each ``every`` seconds,
        ``count`` times (forever if None), whether it is the last, sampling at each column's end
        meanwhile and just before each yield. Ctrl-C yields once more, as the last. With ``clears``, the
        caller clears the table after each yield (as bcc's tools do after printing)."""
        done = 0
        # due times follow each other from the series' start (when it has just begun), not from each
        # wake-up: the last reading of a run of N columns falls at the end of the Nth, not just past it
        fresh = not self._columns and self._clock() - self.start < self.interval
        due = self.start if fresh else self._clock()
        while count is None or done < count:
            due += every
            try:
                while True:
                    now = self._clock()
                    tick = self.start + (math.floor((now - self.start) / self.interval) + 1) * self.interval
                    if tick >= due:
                        time.sleep(max(0.0, due - now))
                        break
                    time.sleep(max(0.0, tick - now))
                    self.sample(tick)
            except KeyboardInterrupt:
                self.sample()
                yield True
                return
            self.sample(due)
            done += 1
            yield count is not None and done >= count
            if clears:
                self.cleared()

    def heatmap(self) -> Heatmap:
        return Heatmap.from_histograms(self._columns, self.interval, self.val_type, self.title)

    def __str__(self) -> str:
        return str(self.heatmap())

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.heatmap()._repr_mimebundle_(include, exclude)
