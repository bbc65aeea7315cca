"""rbcc's notebook API beside the tables' own (``to_pandas()``, ``to_histogram()``, ``collect()``):

- ``frame(events)`` or ``frame(keys, values)``: a DataFrame of structured arrays;
- ``Histogram``: what ``to_histogram()`` returns (bcc's text, numpy, pandas, a chart in Jupyter);
- ``flamegraph(stacks)``: a ``FlameGraph`` (an SVG drawn by the core with inferno) of folded stacks, of
  ``(frames, count)`` pairs, or of a table counting stack ids (``stack_traces=b["stack_traces"]``);
- ``Heatmap``: a latency heatmap (time across, log2 buckets up), ``Heatmap.from_events(times, values)``;
- ``HistogramSeries(b["dist"], interval=1)``: a histogram table sampled every interval into a heatmap;
- ``live(b["dist"], interval=1)``: the histogram redrawn in place until the cell is interrupted.

``%load_ext rbcc`` adds the ``%%bpf NAME`` cell magic. pandas and matplotlib are optional (``pip install
rbcc[notebook]``); what needs one says so, and a picture without matplotlib shows as text."""

from __future__ import annotations

from ._pictures.flame import FlameGraph, flamegraph, fold_stacks
from ._pictures.heatmap import Heatmap
from ._pictures.live import live
from ._pictures.series import HistogramSeries
from ._tables.notebook import Histogram, frame

__all__ = ["FlameGraph", "Heatmap", "Histogram", "HistogramSeries", "flamegraph", "fold_stacks", "frame", "live"]
