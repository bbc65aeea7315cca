"""rbcc's notebook API beside the tables' own (``to_pandas()``, ``to_histogram()``, ``collect()``):
``frame(events)`` or ``frame(keys, values)``, a DataFrame of structured arrays, and ``Histogram``, what
``to_histogram()`` returns (bcc's text, numpy, pandas, a chart in Jupyter). They live in
``rbcc._tables.notebook``; pandas and matplotlib are optional (``pip install rbcc[notebook]``)."""

from __future__ import annotations

from ._tables.notebook import Histogram, frame

__all__ = ["Histogram", "frame"]
