"""OTLP push: a local OTLP/HTTP endpoint receives what the exporter pushes, decodes it with the
OpenTelemetry protobuf definitions (the opentelemetry-proto package), and the data points are the maps'
contents."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _exporters import ExportProcess, syscalls_config, wait_for, worker

from rbcc import BPF
from rbcc.export import Counter, Exporter, Gauge, Histogram, Label

pytestmark = pytest.mark.needs_root

metrics_service = pytest.importorskip(
    "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
    reason="the opentelemetry-proto package is not installed (make test installs it)",
)


class Receiver:
    """An OTLP/HTTP endpoint on 127.0.0.1: each POST to /v1/metrics decoded and kept."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = metrics_service.ExportMetricsServiceRequest()
                request.ParseFromString(body)
                ok = self.path == "/v1/metrics" and self.headers["Content-Type"] == "application/x-protobuf"
                if ok:
                    received.append(request)
                reply = metrics_service.ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metrics(self, request: Any) -> dict[str, Any]:
        """The metrics of one request, by name."""
        found = {}
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _attributes(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


PROGRAM = r"""
struct err_key_t { u32 pid; s32 err; };
struct lat_key_t { char disk[8]; u64 slot; };
BPF_HASH(errors, struct err_key_t, u64);
BPF_PERCPU_ARRAY(depth, u64, 2);
BPF_HISTOGRAM(latency, struct lat_key_t);
"""


def test_pushed_data_points_are_the_maps(receiver: Receiver) -> None:
    b = BPF(text=PROGRAM)
    with b:
        errors, depth, latency = b["errors"], b["depth"], b["latency"]
        errors[errors.Key(7, -2)] = errors.Leaf(5)
        errors[errors.Key(7, -13)] = errors.Leaf(3)
        errors[errors.Key(9, -2)] = errors.Leaf(4)
        cpus = len(depth[0])
        depth[1] = depth.Leaf(*([2] * cpus))
        latency[latency.Key(b"vda", 3)] = latency.Leaf(10)  # below 2**3 usecs
        latency[latency.Key(b"vda", 5)] = latency.Leaf(1)
        latency[latency.Key(b"vdb", 40)] = latency.Leaf(2)  # past max_slot: the +Inf bucket
        exporter = Exporter()
        exporter.add(
            b,
            [
                Counter("errors", "test_errors", "Failures by errno", (Label("errno", "err", "errno"),)),
                Gauge("depth", "test_depth", "Depth", (Label("slot"),)),
                Histogram(
                    "latency",
                    "test_latency_seconds",
                    "Latency",
                    (Label("disk", "disk", "string"),),
                    unit="usecs",
                    max_slot=8,
                ),
            ],
            program="otlp",
        )
        exporter.push_otlp(receiver.url, interval=3600)
        exporter.close()  # the last push, before close returns
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    resource = {kv.key: kv.value.string_value for kv in request.resource_metrics[0].resource.attributes}
    assert resource["service.name"] == "rbcc-export"
    metrics = receiver.metrics(request)

    counter = metrics["test_errors"]
    assert counter.sum.is_monotonic and counter.sum.aggregation_temporality == 2  # cumulative
    got = {_attributes(p)["errno"]: p.as_int or p.as_double for p in counter.sum.data_points}
    assert got == {"ENOENT": 9, "EACCES": 3}  # summed over the pid, which is no label

    gauge = metrics["test_depth"]
    assert {_attributes(p)["slot"]: p.as_int or p.as_double for p in gauge.gauge.data_points} == {
        "0": 0,
        "1": 2 * cpus,  # per-CPU values summed
    }

    histogram = metrics["test_latency_seconds"]
    assert histogram.unit == "s" and histogram.histogram.aggregation_temporality == 2
    points = {_attributes(p)["disk"]: p for p in histogram.histogram.data_points}
    assert list(points["vda"].explicit_bounds) == pytest.approx([2**k * 1e-6 for k in range(9)])
    assert list(points["vda"].bucket_counts) == [0, 0, 0, 10, 0, 1, 0, 0, 0, 0]
    assert points["vda"].count == 11 and not points["vda"].HasField("sum")  # bcc's maps keep no sum
    assert list(points["vdb"].bucket_counts) == [0] * 9 + [2] and points["vdb"].count == 2
    assert points["vda"].start_time_unix_nano < points["vda"].time_unix_nano


def test_rbcc_export_pushes_on_its_interval(tmp_path: Path, receiver: Receiver) -> None:
    with worker(250) as w:
        config = syscalls_config(tmp_path / "otlp.yaml", w.pid)
        comm = Path(f"/proc/{w.pid}/comm").read_text().strip()
        exporter = ExportProcess(str(config), "--otlp", receiver.url, "--otlp-interval", "0.5")
        try:

            def getppid_count() -> float | None:
                if not receiver.requests:
                    return None
                metric = receiver.metrics(receiver.requests[-1]).get("rbcc_test_syscalls")
                for point in metric.sum.data_points if metric else ():
                    if _attributes(point) == {"pid": str(w.pid), "syscall": "getppid", "comm": comm}:
                        return point.as_int or point.as_double
                return None

            assert wait_for(lambda: receiver.requests, 30)
            w.work()
            assert wait_for(lambda: getppid_count() == 250, 30), getppid_count()
            pushes = len(receiver.requests)
            assert wait_for(lambda: len(receiver.requests) > pushes + 1, 10)  # it goes on pushing
        finally:
            code = exporter.stop()
        assert code == 0, "".join(exporter.stderr)
        health = receiver.metrics(receiver.requests[-1])["rbcc_export_programs_loaded"]
        assert health.gauge.data_points[0].as_double == 1
