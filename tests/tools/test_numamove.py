"""numamove: its probes and reason filter, and a live run. NUMA-misplaced migrations need a second
NUMA node to move pages to (and NUMA balancing on): on a machine with one node, as this one and the
test VMs, nothing can cause one, so the live run checks the other half of the filter: the test
makes the kernel migrate pages for another reason (memory compaction, checked in /proc/vmstat), and
every second shows 0; then Ctrl-C ends the tool with status 0."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import numamove

LINE = re.compile(r"^\d\d:\d\d:\d\d +(\d+) +(\d+)$")


def test_counts_numa_misplaced_migrations_only() -> None:
    text = text_of(numamove)
    assert "TRACEPOINT_PROBE(migrate, mm_migrate_pages_start)" in text
    assert "TRACEPOINT_PROBE(migrate, mm_migrate_pages)" in text
    assert text.count("if (args->reason != MR_NUMA_MISPLACED)") == 2


def _nodes() -> int:
    return len([n for n in os.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", n)])


def _migrated() -> int:
    with open("/proc/vmstat") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("pgmigrate_success "))


@pytest.mark.needs_root
def test_compaction_migrations_are_not_counted() -> None:
    if _nodes() > 1:
        pytest.skip("two NUMA nodes: compaction may overlap NUMA balancing's own migrations here")
    if not os.path.exists("/proc/sys/vm/compact_memory"):
        pytest.skip("no /proc/sys/vm/compact_memory (CONFIG_COMPACTION unset): no migrations to cause")
    tool = spawn_rbcc("tool", "numamove")
    lines: list[str] = []
    try:
        assert tool.stdout is not None and tool.stderr is not None
        header = tool.stdout.readline()
        assert header.split() == ["TIME", "NUMA_migrations", "NUMA_migrations_ms"], header + tool.stderr.read()
        reader = threading.Thread(target=lambda: lines.extend(tool.stdout), daemon=True)  # type: ignore[arg-type]
        reader.start()
        before = _migrated()
        deadline = time.monotonic() + 20
        # compaction moves pages even on a quiet machine, the first time at least: repeat until it did
        while _migrated() == before and time.monotonic() < deadline:
            with open("/proc/sys/vm/compact_memory", "w") as f:
                f.write("1")
        seen = len(lines)
        while len(lines) < seen + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tool.send_signal(signal.SIGINT)
        assert tool.wait(timeout=30) == 0, tool.stderr.read()
    finally:
        if tool.poll() is None:
            tool.kill()
            tool.wait()
    reader.join(timeout=10)
    if _migrated() == before:
        pytest.skip("memory compaction found no page to move in 20 s: no migration to leave out")
    assert len(lines) >= 2 and all(LINE.match(line.rstrip("\n")) for line in lines), lines
    assert all(LINE.match(line.rstrip("\n")).groups() == ("0", "0") for line in lines), lines  # type: ignore[union-attr]
    assert "Traceback" not in tool.stderr.read()  # type: ignore[union-attr]
