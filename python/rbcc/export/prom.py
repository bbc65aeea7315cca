"""Prometheus: the collected families as prometheus_client's metric families, and its HTTP server.

prometheus_client writes the exposition (text or OpenMetrics, as the scraper asks) and serves it; the
collector below reads the maps on every scrape. The server answers GET of any path with the metrics
and nothing else: no request's path, query or body reaches a BPF program or the filesystem.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .read import Family

if TYPE_CHECKING:
    from .exporter import Exporter

__all__ = ["PromCollector", "families", "serve"]


def _client() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
        import prometheus_client.registry
    except ImportError:
        raise ImportError("rbcc export serves Prometheus with prometheus_client: pip install 'rbcc[export]'") from None
    return prometheus_client


def _bound(value: float) -> str:
    # prometheus_client's own form of a bucket bound ("0.001024", "+Inf"), so le labels match its histograms
    from prometheus_client import utils

    format_float: Any = utils.floatToGoString  # untyped in prometheus_client
    return str(format_float(value))


def families(collected: Iterable[Family]) -> Iterator[Any]:
    """prometheus_client metric families of ``collected``."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    for family in collected:
        names = list(family.label_names)
        if family.type == "counter":
            counter = CounterMetricFamily(family.name, family.help, labels=names)
            for labels, value in family.series.items():
                counter.add_metric(list(labels), value)
            yield counter
        elif family.type == "gauge":
            gauge = GaugeMetricFamily(family.name, family.help, labels=names)
            for labels, value in family.series.items():
                gauge.add_metric(list(labels), value)
            yield gauge
        else:
            # HistogramMetricFamily writes _count only with a _sum, which bcc's slot maps do not keep:
            # the same samples, made here, with the count and without the sum.
            histogram = Metric(family.name, family.help, "histogram")
            les = [_bound(b) for b in family.bounds] + ["+Inf"]
            for labels, counts in family.buckets.items():
                base = dict(zip(names, labels))
                total = 0
                for le, count in zip(les, counts):
                    total += count
                    histogram.add_sample(f"{family.name}_bucket", {**base, "le": le}, float(total))
                histogram.add_sample(f"{family.name}_count", base, float(total))
            yield histogram


class PromCollector:
    """A prometheus_client collector reading an exporter's maps at each scrape."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def describe(self) -> list[Any]:
        return []  # nothing to check up front: registering it must not read the maps

    def collect(self) -> Iterator[Any]:
        return families(self._exporter.collect())


class _Service:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def serve(exporter: Exporter, host: str, port: int) -> tuple[_Service, tuple[str, int]]:
    """Serve ``exporter`` at http://host:port/metrics (with the process's own CPU and memory, from
    prometheus_client's process collector); returns the service and the address bound."""
    client = _client()
    # a collector that names nothing up front still answers ?name[]=... (prometheus_client >= 0.21 can)
    registry = client.registry.CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
    registry.register(PromCollector(exporter))
    client.ProcessCollector(registry=registry)
    server, thread = client.start_http_server(port, addr=host, registry=registry)
    bound = server.server_address
    return _Service(server, thread), (str(bound[0]), int(bound[1]))
