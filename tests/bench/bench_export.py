"""What ``rbcc export`` costs the host it watches: scrape latency and the exporter's CPU per scrape for a
10k-series map (a hash of 10,000 keys, each its own label set: 100 PIDs x 100 syscalls, the syscall
decoded to its name), as Prometheus scrapes it (OpenMetrics), and the exporter's memory.

Run as root: ``python3 tests/bench/bench_export.py`` (``make bench`` runs it). The exporter runs in a
process of its own, so its CPU time (from /proc) is the exporter's alone, not the scraper's. Exits 1
when a target is missed; prints a table, and JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Targets: a scrape every 15 s (Prometheus's default) should cost the host well under 1% of a CPU, and
# answer well inside Prometheus's default 10 s scrape timeout even on a loaded machine.
TARGETS = {"scrape_ms": 250.0, "cpu_ms_per_scrape": 150.0, "rss_mib": 96.0}

# Prometheus's Accept header (2.42): OpenMetrics first
ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)

SERVER = """
import sys
from rbcc import BPF
from rbcc.export import Counter, Exporter, Label

n = int(sys.argv[1])
b = BPF(text="struct key_t { u32 pid; u32 nr; }; BPF_HASH(calls, struct key_t, u64, %d);" % n)
calls = b["calls"]
keys = (calls.Key * n)(*[calls.Key(1000 + i // 100, i % 100) for i in range(n)])
values = (calls.Leaf * n)(*[calls.Leaf(i) for i in range(n)])
calls.items_update_batch(keys, values)
labels = (Label("pid", "pid"), Label("syscall", "nr", "syscall"))
exporter = Exporter(max_series=n)
exporter.add(b, [Counter("calls", "bench_syscalls", "Syscalls by process", labels)], program="bench")
host, port = exporter.serve("127.0.0.1:0")
print(port, flush=True)
sys.stdin.read()
exporter.close()
"""


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return kib / 1024


def _scrape(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return time.perf_counter() - start, body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000, help="label sets in the map")
    parser.add_argument("--scrapes", type=int, default=30, help="scrapes measured (after 3 to warm up)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmark loads a BPF program: run it as root", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO / "python"), os.environ.get("PYTHONPATH")) if p),
    }
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.series)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/metrics"
        for _ in range(3):
            _scrape(url)
        cpu_before = _cpu_seconds(server.pid)
        latencies, size = [], 0
        for _ in range(args.scrapes):
            seconds, body = _scrape(url)
            latencies.append(seconds)
            size = len(body)
        cpu = (_cpu_seconds(server.pid) - cpu_before) / args.scrapes
        rss = _rss_mib(server.pid)
        series = body.decode().count("\nbench_syscalls_total{")
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(30)
    latencies.sort()
    results = {
        "series": series,
        "exposition_kib": size / 1024,
        "scrape_ms": statistics.median(latencies) * 1000,
        "scrape_p90_ms": latencies[int(len(latencies) * 0.9) - 1] * 1000,
        "cpu_ms_per_scrape": cpu * 1000,
        "rss_mib": rss,
    }
    ok = series == args.series
    print(f"rbcc export, a {args.series}-series map scraped {args.scrapes} times (OpenMetrics, as Prometheus asks):")
    for name, value in results.items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("  ok" if value <= target else "  MISSED")
        ok = ok and (target is None or value <= target)
        print(f"  {name:<18} {value:10.1f} {'' if target is None else f'<= {target:g}':>10}{mark}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
