"""compactsnoop: the C for its options, /proc/zoneinfo's zone starts, -e's one line without kprobes;
live, a child that asks for compaction through /proc/sys/vm/compact_memory shows one line per populated
zone, under its pid and comm, synchronous, ORDER -1, with a known result."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _bpfutil import run_interrupted
from _toolcheck import assert_kprobes_load, refusal_line, text_of

from rbcc.tools import compactsnoop

ZONEINFO = """Node 0, zone      DMA
  per-node stats
  pages free     3840
        present  3998
  start_pfn:           1
Node 0, zone    DMA32
        present  782298
  start_pfn:           4096
Node 1, zone   Normal
        present  0
  start_pfn:           1048576
"""


def test_zone_starts_come_from_zoneinfo() -> None:
    assert compactsnoop.zone_starts(ZONEINFO) == {
        1: (0, "ZONE_DMA"),
        4096: (0, "ZONE_DMA32"),
        1048576: (1, "ZONE_NORMAL"),
    }


def test_options_shape_the_c() -> None:
    plain = text_of(compactsnoop)
    assert "TRACEPOINT_PROBE(compaction, mm_compaction_suitable)" in plain
    # without -e, the kretprobe and the raw tracepoint that reads the zone's watermarks are left out
    assert "#if 0\nint trace_fragmentation_index_return" in plain
    assert "data.stack_id = -1;" in plain
    filtered = text_of(compactsnoop, "-p", "42", "-K")
    assert "return (id >> 32) != 42;" in filtered and "stack_traces.get_stackid(args, 0)" in filtered
    extended = text_of(compactsnoop, "-e")
    assert "#if 1\nint trace_fragmentation_index_return" in extended


@pytest.mark.needs_root
def test_extended_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(compactsnoop, "-e"), ["trace_fragmentation_index_return"])


@pytest.mark.without_kprobes
def test_extended_fields_need_kprobes_and_say_so_in_one_line() -> None:
    line = refusal_line("tool", "compactsnoop", "-e")
    assert line.startswith("compactsnoop: needs kprobes on fragmentation_index") and "run without -e" in line


def populated_zones() -> set[tuple[int, str]]:
    """(node, zone) of each zone with pages: the ones compact_memory compacts."""
    found, here = set(), None
    with open("/proc/zoneinfo") as f:
        for line in f:
            words = line.split()
            if line.startswith("Node "):
                here = (int(words[1].rstrip(",")), "ZONE_" + words[3].upper())
            elif words[:1] == ["present"] and here is not None and int(words[1]) > 0:
                found.add(here)
    return found


COMPACTOR = """
import sys
with open("/proc/self/comm", "w") as f:
    f.write("compactor")
print("ready", flush=True)
sys.stdin.readline()
with open("/proc/sys/vm/compact_memory", "w") as f:
    f.write("1")
"""


@pytest.mark.needs_root
def test_shows_the_compaction_a_child_asks_for() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", COMPACTOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    zones = populated_zones()
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"

        def workload() -> None:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.wait(timeout=120) == 0

        def ours(out: str) -> list[list[str]]:
            return [f for f in (line.split() for line in out.splitlines()) if f[1:2] == [str(child.pid)]]

        out, _ = run_interrupted(
            ["tool", "compactsnoop", "-p", str(child.pid)],
            lambda h: h.split() == ["COMM", "PID", "NODE", "ZONE", "ORDER", "MODE", "LAT(ms)", "STATUS"],
            workload,
            lambda out: len(ours(out)) >= len(zones),
            timeout=60,
        )
    finally:
        child.kill()
        child.wait()
    rows = ours(out)
    assert {(int(f[2]), f[3]) for f in rows} == zones, out
    assert len(rows) == len(zones), out
    for comm, _, _, _, order, mode, lat, status in rows:
        assert (comm, order, mode) == ("compactor", "-1", "SYNC") and float(lat) >= 0
        assert status in ("complete", "success", "partial_skipped", "contended"), status
    assert len(out.splitlines()) == 1 + len(rows), out  # -p: no one else's
