"""bpftop: the per-interval arithmetic, and live, a program of this test's own on a tracepoint the test
fires a known number of times: bpftop shows it, by its whole name, with at least that many runs."""

from __future__ import annotations

import os
import time

import pytest
from _toolcheck import spawn_rbcc

from rbcc import BPF
from rbcc.tools import bpftop


def test_rows_are_what_changed_in_the_interval() -> None:
    before = {1: ("tracepoint", "a", 1_000, 10), 2: ("kprobe", "gone", 5, 5)}
    after = {1: ("tracepoint", "a", 5_000, 30), 3: ("xdp", "new", 2_000, 4)}
    got = {r.id: r for r in bpftop.rows(before, after, 2.0, 4)}
    assert set(got) == {1, 3}  # an unloaded program has no row
    assert got[1][3:] == (4_000, 20, 200.0, 10.0, 100.0 * 4_000 / (2e9 * 4))
    # a program loaded during the interval: all its counts are the interval's
    assert (got[3].runtime_ns, got[3].events, got[3].avg_ns) == (2_000, 4, 500.0)
    idle = bpftop.rows({1: ("tracepoint", "a", 7, 7)}, {1: ("tracepoint", "a", 7, 7)}, 1.0, 1)[0]
    assert (idle.avg_ns, idle.events_per_s, idle.cpu_percent) == (0.0, 0.0, 0.0)


def test_sorts_order_by_the_chosen_column() -> None:
    r = bpftop.rows({}, {1: ("t", "x", 900, 1), 2: ("t", "y", 100, 50), 3: ("t", "z", 500, 5)}, 1.0, 1)
    order = {key: [row.id for row in sorted(r, key=bpftop.SORTS[key], reverse=True)] for key in bpftop.SORTS}
    assert order == {"cpu": [1, 3, 2], "events": [2, 3, 1], "avg": [1, 3, 2], "id": [1, 2, 3]}


def test_loads_no_program() -> None:
    args = bpftop.build_parser().parse_args(["-s", "events", "-i", "3", "2"])
    assert bpftop.bpf_text(args) == "" and (args.interval, args.count, args.sort) == (3, 2, "events")


PROBE = """
int PROBE_NAME(struct tracepoint__syscalls__sys_enter_getppid *args) { return 0; }
"""


@pytest.mark.needs_root
def test_shows_a_program_run_a_known_number_of_times() -> None:
    runs = 20_000
    name = f"bpftop_probe_of_test_{os.getpid()}"  # longer than the kernel keeps: the whole name is BTF's
    b = BPF(text=PROBE.replace("PROBE_NAME", name))
    with b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name=name)
        started = time.monotonic()
        tool = spawn_rbcc("tool", "bpftop", "-C", "-r", "100000", "-i", "3", "1")
        assert tool.stdout is not None and tool.stderr is not None
        line = tool.stdout.readline()
        assert line.startswith("Tracing..."), line + tool.stderr.read()
        for _ in range(runs):
            os.getppid()
        out, err = tool.communicate(timeout=60)
        ended = time.monotonic()
    assert tool.returncode == 0 and "Traceback" not in err, err
    header = next(i for i, text in enumerate(out.splitlines()) if text.startswith("ID "))
    assert out.splitlines()[header].split() == ["ID", "TYPE", "NAME", "PERIOD-AVG-RUNTIME(ns)", "EVENTS/s", "CPU%"]
    ours = [text.split() for text in out.splitlines() if f" {name} " in f"{text} "]
    assert len(ours) == 1, out
    _, kind, _, avg_ns, per_s, cpu = ours[0]
    assert kind == "tracepoint"
    # its interval lies within the tool's life, so per second it ran at least runs/life times
    assert float(per_s) * (ended - started) >= runs, (per_s, ended - started)
    assert int(avg_ns) > 0 and float(cpu) >= 0.0
    assert out.rstrip().endswith("Detaching...")
