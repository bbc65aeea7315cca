"""A fleet of two: a real Prometheus server (Debian's prometheus package) scrapes two ``rbcc export``
processes, each running a config file and the biolatency tool's metric set. The test makes known work
(getppid calls in a worker, O_DIRECT writes to a loop device of its own) and asks Prometheus's HTTP API
for the exact counts."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from _exporters import ExportProcess, loop_device, syscalls_config, wait_for, worker

pytestmark = pytest.mark.needs_root

GETPPID = 1000
WRITES = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server on a free port with a data directory of its own, scraping ``targets``
    every second."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: rbcc\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = open(workdir / "prometheus.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        if not wait_for(self._ready, 60):
            self.stop()
            raise AssertionError(f"prometheus did not start: {(workdir / 'prometheus.log').read_text()}")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def query(self, promql: str) -> dict[str, float]:
        """An instant query's vector, by instance ("" for a result without one)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return {item["metric"].get("instance", ""): float(item["value"][1]) for item in body["data"]["result"]}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="rbcc-export-") as tmp:
        yield Path(tmp)


@pytest.fixture
def loop(workdir: Path) -> Iterator[str]:
    """A loop device of the test's own, so the block writes it counts are the only I/O on that disk."""
    device = loop_device(workdir / "disk.img")
    if device is None:
        pytest.skip("no loop device: `losetup --find --show FILE` could not attach one here")
    try:
        yield device
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


@contextlib.contextmanager
def _fleet(config: Path) -> Iterator[list[ExportProcess]]:
    """Two exporters, two "machines" of the fleet, each serving the config and biolatency per disk."""
    exporters: list[ExportProcess] = []
    try:
        for _ in range(2):
            exporters.append(ExportProcess(str(config), "--tool", "biolatency -D"))
        yield exporters
    finally:
        codes = [e.stop() for e in exporters]
    assert codes == [0] * len(exporters), [("".join(e.stderr)) for e in exporters]


def test_prometheus_scrapes_two_exporters_and_sees_the_exact_counts(workdir: Path, loop: str) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("Debian's prometheus package is not installed (make test-deps installs it)")
    disk = Path(loop).name
    with worker(GETPPID, WRITES, loop) as w, _fleet(syscalls_config(workdir / "fleet.yaml", w.pid)) as fleet:
        instances = {f"127.0.0.1:{e.port}" for e in fleet}
        prometheus = Prometheus(workdir, sorted(instances))
        try:
            up = 'up{job="rbcc"}'
            assert wait_for(lambda: prometheus.query(up) == dict.fromkeys(instances, 1.0), 60), prometheus.query(up)
            latency = f'rbcc_biolatency_seconds_count{{disk="{disk}"}}'
            before = {i: prometheus.query(latency).get(i, 0.0) for i in instances}

            w.work()

            calls = f'sum by (instance) (rbcc_test_syscalls_total{{pid="{w.pid}", syscall="getppid"}})'
            want_calls = dict.fromkeys(instances, float(GETPPID))
            want_writes = {i: before[i] + WRITES for i in instances}
            assert wait_for(lambda: prometheus.query(calls) == want_calls, 30), prometheus.query(calls)
            assert wait_for(lambda: {i: prometheus.query(latency).get(i, 0.0) for i in instances} == want_writes, 30), (
                prometheus.query(latency)
            )
            # every bucket of the writes' histogram is there, and the +Inf one is the count
            buckets = prometheus.query(f'rbcc_biolatency_seconds_bucket{{disk="{disk}", le="+Inf"}}')
            assert buckets == prometheus.query(latency)
            health = prometheus.query("sum by (instance) (rbcc_export_programs_loaded)")
            assert health == dict.fromkeys(instances, 2.0)
            errors = prometheus.query("sum by (instance) (rbcc_export_scrape_errors_total)")
            assert errors == dict.fromkeys(instances, 0.0)
        finally:
            prometheus.stop()
