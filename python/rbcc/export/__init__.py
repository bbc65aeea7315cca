"""BPF maps as fleet metrics: Prometheus scrapes and OpenTelemetry (OTLP) pushes.

Declare which maps of a ``BPF`` object become which metrics, and serve them::

    from rbcc import BPF
    from rbcc.export import Counter, Exporter, Histogram, Label

    b = BPF(text=...)
    with Exporter() as ex:
        ex.add(b, [
            Counter("calls", "myapp_syscalls", "Syscalls by name", labels=[Label("syscall", "nr", "syscall")]),
            Histogram("dist", "myapp_latency_seconds", "Latency", unit="usecs"),
        ])
        ex.serve("127.0.0.1:9435")           # Prometheus scrapes http://127.0.0.1:9435/metrics
        ex.push_otlp("http://127.0.0.1:4318/v1/metrics", interval=15)

Maps are read when a scraper asks (or a push is due), one batch read per map, never from a copy.
Counters and gauges come from hash and array maps (per-CPU values summed; key fields become labels
through decoders: comm, ksym, usym, kstack, ustack, syscall, errno, ip, port, cgroup, disk, map);
histograms from bcc's log2 and linear histogram maps, in the base unit (``usecs`` → seconds). Each
metric keeps at most ``max_series`` label sets (2000 unless told), counting what it leaves out in
``rbcc_export_series_dropped``. ``rbcc export CONFIG.yaml`` and ``rbcc export --tool NAME`` run this
from the command line (rbcc.export.cli).

Serving needs prometheus_client, pushing the OpenTelemetry SDK and its OTLP exporter, reading config
files PyYAML: ``pip install 'rbcc[export]'``. Declaring metrics needs none of them.
"""

from __future__ import annotations

from .decoders import DECODERS
from .exporter import Exporter, field_of, parse_listen
from .read import Family
from .spec import (
    DEFAULT_MAX_SERIES,
    UNITS,
    Attach,
    Counter,
    Gauge,
    Histogram,
    Label,
    Metric,
    Program,
    SpecError,
)

__all__ = [
    "DECODERS",
    "DEFAULT_MAX_SERIES",
    "UNITS",
    "Attach",
    "Counter",
    "Exporter",
    "Family",
    "Gauge",
    "Histogram",
    "Label",
    "Metric",
    "Program",
    "SpecError",
    "field_of",
    "parse_listen",
]
