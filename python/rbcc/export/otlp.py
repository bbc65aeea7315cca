"""OpenTelemetry: the collected families as the SDK's metric data, pushed by its OTLP/HTTP exporter.

The maps are read at each push, as at each scrape; the SDK's data classes and its exporter make the
protobuf and send it (with its retries). Counters are cumulative sums from the exporter's start, gauges
gauges, histograms explicit-bucket histograms in the base unit (without a sum: bcc's maps keep none).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .read import Family

if TYPE_CHECKING:
    from .exporter import Exporter

__all__ = ["Pusher", "metrics_data"]

# UCUM units, as OpenTelemetry names them
_UNITS = {"seconds": "s", "bytes": "By", "": ""}


def _sdk() -> None:
    try:
        import opentelemetry.exporter.otlp.proto.http.metric_exporter  # noqa: F401
        import opentelemetry.sdk.metrics.export  # noqa: F401
    except ImportError:
        raise ImportError(
            "rbcc export pushes OTLP with the OpenTelemetry SDK and its OTLP/HTTP exporter: pip install 'rbcc[export]'"
        ) from None


def metrics_data(collected: Iterable[Family], start_ns: int, now_ns: int | None = None) -> Any:
    """The SDK's MetricsData for ``collected``: one resource (this host), one scope (rbcc.export)."""
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Gauge,
        Histogram,
        HistogramDataPoint,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from .. import __version__

    now = time.time_ns() if now_ns is None else now_ns
    cumulative = AggregationTemporality.CUMULATIVE
    metrics = []
    for family in collected:
        names = family.label_names
        data: Any
        if family.type == "histogram":
            points = [
                HistogramDataPoint(
                    attributes=dict(zip(names, labels)),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now,
                    count=sum(counts),
                    # bcc's maps keep no sum, minimum or maximum: the protobuf leaves them out for None
                    sum=None,  # type: ignore[arg-type]
                    bucket_counts=list(counts),
                    explicit_bounds=list(family.bounds),
                    min=None,  # type: ignore[arg-type]
                    max=None,  # type: ignore[arg-type]
                )
                for labels, counts in family.buckets.items()
            ]
            data = Histogram(data_points=points, aggregation_temporality=cumulative)
        else:
            numbers = [
                NumberDataPoint(
                    attributes=dict(zip(names, labels)),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now,
                    value=value,
                )
                for labels, value in family.series.items()
            ]
            if family.type == "counter":
                data = Sum(data_points=numbers, aggregation_temporality=cumulative, is_monotonic=True)
            else:
                data = Gauge(data_points=numbers)
        metrics.append(Metric(name=family.name, description=family.help, unit=_UNITS[family.unit], data=data))
    resource = Resource.create({"service.name": "rbcc-export", "host.name": socket.gethostname()})
    scope = InstrumentationScope("rbcc.export", __version__)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource,
                scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics, schema_url="")],
                schema_url="",
            )
        ]
    )


class Pusher:
    """Pushes an exporter's metrics to an OTLP/HTTP endpoint every ``interval`` seconds, from a
    thread, and once more when closed."""

    def __init__(self, exporter: Exporter, url: str, interval: float, headers: dict[str, str]) -> None:
        _sdk()
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        self._exporter = exporter
        self._otlp = OTLPMetricExporter(endpoint=url, headers=headers, timeout=max(1.0, min(interval, 10.0)))
        self._url = url
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rbcc-export-otlp", daemon=True)
        self._failing = False
        self._thread.start()

    def push(self) -> bool:
        """Read the maps and push them now; False (and counted) when the endpoint did not take them."""
        from opentelemetry.sdk.metrics.export import MetricExportResult

        data = metrics_data(self._exporter.collect(), self._exporter.started_ns())
        try:
            ok = self._otlp.export(data) is MetricExportResult.SUCCESS
        except Exception as e:  # noqa: BLE001 - a push that fails is counted and said, the next one tries again
            print(f"rbcc export: OTLP push to {self._url}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            ok = False
        if not ok:
            self._exporter.push_errors += 1
            if not self._failing:
                print(f"rbcc export: OTLP push to {self._url} failed (retrying each interval)", file=sys.stderr)
        self._failing = not ok
        return ok

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.push()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self._interval + 15)
        self.push()  # the counts since the last push, before the programs go
        self._otlp.shutdown()
