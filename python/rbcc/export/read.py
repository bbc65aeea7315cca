"""Reading one metric out of its map, now: one batch read of the map (``to_numpy()``, shared by the
metrics of a map within one collection), labels decoded from the key fields, values summed over CPUs
and over the key fields that are no label, and the cardinality guard.

Entries whose labels decode alike are summed into one series, so a collection never holds two series
with the same labels, whatever the map held while it was read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .decoders import Decode, make
from .spec import UNITS, Histogram, Label, Metric, SpecError

__all__ = ["Family", "MapCache", "MetricReader"]

Labels = tuple[str, ...]

# A collection's batch reads: (program, map) → (keys, values) as numpy arrays, or the error reading it.
MapCache = dict[tuple[str, str], Any]


@dataclass
class Family:
    """One metric as collected, in neither library's form (prom.py and otlp.py each make theirs):
    ``series`` for counters and gauges; ``buckets`` for histograms, per label set the count of each
    bucket of ``bounds`` followed by the count past the last bound."""

    name: str
    type: str  # counter, gauge or histogram
    help: str
    label_names: Labels
    series: dict[Labels, float] = field(default_factory=dict)
    buckets: dict[Labels, list[int]] = field(default_factory=dict)
    bounds: tuple[float, ...] = ()
    unit: str = ""  # seconds, bytes, or "" (a plain number)


@dataclass
class Outcome:
    """What the exporter's health reports of one read."""

    seconds: float = 0.0
    series: int = 0
    dropped: int = 0
    error: str = ""


def _column(array: Any, path: str, what: str) -> Any:
    """Field ``path`` (dotted) of a structured array; the array itself for ""."""
    column = array
    for part in path.split(".") if path else ():
        names = column.dtype.names
        if not names or part not in names:
            has = f"its fields: {', '.join(names)}" if names else "it is a plain number, name no field"
            raise SpecError("field", f"the map's {what} has no field {path!r} ({has})")
        column = column[part]
    if not path and column.dtype.names:
        raise SpecError(
            "field", f"the map's {what} is a struct: name one of its fields ({', '.join(column.dtype.names)})"
        )
    return column


class MetricReader:
    """Reads one metric of one program's BPF object; keeps the label sets the guard let through."""

    def __init__(self, program: str, bpf: Any, metric: Metric, max_series: int) -> None:
        self.program = program
        self.bpf = bpf
        self.metric = metric
        self.max_series = metric.max_series or max_series
        self._decoders = [self._decoder(label) for label in metric.labels]
        self._admitted: set[Labels] = set()
        self.total_errors = 0

    def _decoder(self, label: Label) -> Decode:
        if isinstance(label.decoder, str):
            return make(label.decoder, label.options, self.bpf)
        return Decode(label.decoder, False, "")

    def check(self, cache: MapCache) -> None:
        """Read once, raising SpecError (naming the field) where the map does not fit the metric."""
        keys, values = self._arrays(cache)
        for i, label in enumerate(self.metric.labels):
            try:
                _column(keys, label.field, "key")
                if self._decoders[i].pair:
                    _column(keys, self._decoders[i].pair, "key")
            except SpecError as e:
                raise SpecError(f"labels[{i}].field", e.message) from None
        try:
            _column(values, self.metric.value, "value")
        except SpecError as e:
            raise SpecError("value", e.message) from None
        if isinstance(self.metric, Histogram) and keys.dtype.names:
            try:
                _column(keys, self.metric.slot, "key")
            except SpecError as e:
                raise SpecError("slot", e.message) from None

    def _arrays(self, cache: MapCache) -> tuple[Any, Any]:
        where = (self.program, self.metric.map)
        if where not in cache:
            try:
                table = self.bpf[self.metric.map]
            except KeyError:
                raise SpecError("map", f"the program has no map {self.metric.map!r}") from None
            try:
                cache[where] = table.to_numpy()
            except Exception as e:  # noqa: BLE001 - any failure of this read is this scrape's error, reported
                cache[where] = e
        got = cache[where]
        if isinstance(got, Exception):
            raise got
        keys, values = got
        return keys, values

    def read(self, cache: MapCache) -> tuple[Family, Outcome]:
        """The metric as the map holds it now, and how the read went. A failed read is an empty family
        and an outcome with its error: one metric's trouble never spoils the rest of a scrape."""
        metric = self.metric
        family = Family(
            metric.name, metric.metric_type, metric.help or f"map {metric.map} of {self.program}", metric.label_names
        )
        if isinstance(metric, Histogram):
            family.bounds = tuple(metric.bounds())
            family.unit = UNITS[metric.unit][0]
        start = time.perf_counter()
        outcome = Outcome()
        try:
            keys, values = self._arrays(cache)
            labels = self._labels(keys)
            counts = self._values(values)
            if isinstance(metric, Histogram):
                family.buckets = self._histogram(metric, keys, labels, counts)
                outcome.dropped = self._guard(family.buckets)
                outcome.series = len(family.buckets)
            else:
                family.series = self._scalars(labels, counts)
                outcome.dropped = self._guard(family.series)
                outcome.series = len(family.series)
        except Exception as e:  # noqa: BLE001 - reported in the health metrics, the scrape goes on
            family.series, family.buckets = {}, {}
            outcome.error = f"{type(e).__name__}: {e}"
            self.total_errors += 1
        outcome.seconds = time.perf_counter() - start
        return family, outcome

    def _labels(self, keys: Any) -> list[Labels | None]:
        """Each entry's label texts (None where a decoder leaves the entry out)."""
        count = len(keys)
        if not self._decoders:
            return [()] * count
        columns: list[Sequence[str | None]] = []
        for label, decode in zip(self.metric.labels, self._decoders):
            column = _column(keys, label.field, "key")
            if decode.raw:
                values: list[Any] = [row.tobytes() for row in column]
            else:
                values = [tuple(v) if isinstance(v, list) else v for v in column.tolist()]
            if decode.pair:
                values = list(zip(values, _column(keys, decode.pair, "key").tolist()))
            columns.append([decode.fn(v) for v in values])
        return [None if None in row else row for row in zip(*columns)]

    def _values(self, values: Any) -> list[int | float]:
        column = _column(values, self.metric.value, "value")
        if column.ndim == 2:  # per-CPU: one column per CPU
            column = column.sum(axis=1)
        counts: list[int | float] = column.tolist()
        return counts

    def _scalars(self, labels: list[Labels | None], counts: list[int | float]) -> dict[Labels, float]:
        scale = 1.0 if isinstance(self.metric, Histogram) else self.metric.scale
        series: dict[Labels, float] = {}
        if not self.metric.labels:
            return {(): float(sum(counts)) * scale}
        for row, count in zip(labels, counts):
            if row is not None:
                series[row] = series.get(row, 0.0) + count
        if scale != 1.0:
            series = {row: value * scale for row, value in series.items()}
        return series

    def _histogram(
        self, metric: Histogram, keys: Any, labels: list[Labels | None], counts: list[int | float]
    ) -> dict[Labels, list[int]]:
        slots: list[int] = (_column(keys, metric.slot, "key") if keys.dtype.names else keys).tolist()
        last = metric.last_slot
        width = last + 2  # a bucket per slot, then the one past the last bound
        buckets: dict[Labels, list[int]] = {}
        if not metric.labels:
            buckets[()] = [0] * width  # a plain histogram is there from the start, empty
        for row, slot, count in zip(labels, slots, counts):
            if row is None or not count:
                continue
            counted = buckets.get(row)
            if counted is None:
                counted = buckets[row] = [0] * width
            counted[slot if 0 <= slot <= last else last + 1] += int(count)
        return buckets

    def _guard(self, found: dict[Labels, Any]) -> int:
        """Keep at most max_series label sets, those already exported first (so series do not flap
        between scrapes), then new ones in sorted order; the rest are left out of ``found``. Returns
        how many were left out."""
        limit = self.max_series
        kept = self._admitted.intersection(found)
        new = [row for row in found if row not in self._admitted]
        dropped = 0
        room = limit - len(kept)
        if len(new) > room:
            new.sort()
            dropped = len(new) - room
            for row in new[room:]:
                del found[row]
            new = new[:room]
        self._admitted = kept.union(new)
        return dropped
