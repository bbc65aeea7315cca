"""A histogram table sampled into a heatmap (rbcc._pictures.series) and the live view
(rbcc._pictures.live), over a fake table whose counts the test sets, and a fake clock where time
matters to the column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rbcc._pictures.live import live
from rbcc._pictures.series import HistogramSeries, total_counts
from rbcc._tables.notebook import Histogram


class FakeHist:
    """A histogram table: ``to_histogram()`` of the counts the test sets; ``sections`` splits them in
    two buckets, as a struct-keyed table gives ``{bucket: Histogram}``."""

    def __init__(self, sections: bool = False) -> None:
        self.counts = np.zeros(8, dtype=np.int64)
        self.sections = sections
        self.cleared = 0

    def add(self, slot: int, n: int = 1) -> None:
        self.counts[slot] += n

    def to_histogram(self, val_type: str = "value") -> Any:
        if not self.sections:
            return Histogram(self.counts.copy(), "log2", val_type)
        half = self.counts // 2
        return {"sda": Histogram(half, "log2", val_type), "sdb": Histogram(self.counts - half, "log2", val_type)}

    def clear(self) -> None:
        self.counts[:] = 0
        self.cleared += 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sections_are_added_up() -> None:
    table = FakeHist(sections=True)
    table.add(3, 5)
    assert total_counts(table.to_histogram()).tolist() == [0, 0, 0, 5, 0, 0, 0, 0]


def test_each_reading_s_growth_goes_to_the_column_of_its_time() -> None:
    table, clock = FakeHist(), Clock()
    series = HistogramSeries(table, interval=1.0, val_type="usecs", clock=clock)
    table.add(2, 3)
    clock.now = 101.0  # the end of the first column belongs to it
    series.sample()
    table.add(2, 1)
    table.add(5, 2)
    clock.now = 102.5
    series.sample()
    clock.now = 103.0
    table.add(5, 1)
    series.sample()
    counts = series.heatmap().counts
    assert counts[:, 2].tolist() == [3, 0, 1] and counts[:, 5].tolist() == [0, 0, 3]


def test_a_cleared_table_counts_again_from_zero() -> None:
    table, clock = FakeHist(), Clock()
    series = HistogramSeries(table, clock=clock)
    table.add(1, 4)
    clock.now = 100.5
    series.sample()
    table.clear()
    series.cleared()
    table.add(1, 1)
    series.sample()
    assert series.heatmap().counts[0, 1] == 5
    # cleared without a word: a reading below the last one is all new
    table.clear()
    table.add(3, 1)
    clock.now = 101.5
    series.sample()
    assert series.heatmap().counts[1].tolist()[:4] == [0, 0, 0, 1]


def test_the_tools_loop_samples_every_column_and_yields_at_each_print() -> None:
    table = FakeHist()
    series = HistogramSeries(table, interval=0.05)
    yields = []
    for last in series.intervals(0.12, 2):
        yields.append(last)
        table.add(4, 2)  # what the next print interval will have counted...
        table.clear()  # ...but the tool prints and clears first, as bcc's do
        table.add(4, 1)
    assert yields == [False, True]
    heat = series.heatmap()
    assert 4 <= heat.counts.shape[0] <= 6  # 0.24 s in 0.05 s columns
    assert heat.counts[:, 4].sum() == 1  # the count after the first clear; the one after the last is unread


def test_run_samples_for_a_duration() -> None:
    table = FakeHist()
    table.add(2, 7)
    heat = HistogramSeries(table, interval=0.02).run(0.1)
    assert heat.total == 7 and heat.counts.shape[0] == 5


def test_live_redraws_a_count_of_times_outside_jupyter(capsys: pytest.CaptureFixture[str]) -> None:
    table = FakeHist()
    table.add(3, 2)
    live(table, 0.01, val_type="usecs", count=2, clear=True)
    out = capsys.readouterr().out
    # the first drawing, then two more; the table cleared after each
    assert out.count("usecs") == 1 and out.count("4 -> 7") == 1 and table.cleared == 3


def test_live_draws_a_heatmap_that_grows() -> None:
    table = FakeHist()
    table.add(3, 2)
    live(table, 0.01, count=3, heatmap=True)
    assert table.cleared == 0
