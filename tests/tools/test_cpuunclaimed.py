"""cpuunclaimed: grouping of samples and the arithmetic, and live runs while the test keeps every CPU's
queue at two or more tasks."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

import pytest
from _bpfutil import child_env
from _schedwork import busy_loops
from _toolcheck import run_rbcc

from rbcc.tools import cpuunclaimed
from rbcc.tools.cpuunclaimed import Group, Grouper, SkewError

NCPU = os.cpu_count() or 1
PER_CPU = 2


def test_stats_count_idle_cpus_that_could_have_run_queued_tasks() -> None:
    g = Group({100: (0, 3), 110: (1, 0), 120: (2, 0), 130: (3, 1)})
    # CPU 0 runs one and queues two; CPUs 1 and 2 idle: both could have taken one
    assert g.stats(4) == (2, 2, 2)
    assert Group({1: (0, 5), 2: (1, 1)}).stats(2) == (2, 0, 0)  # no idle CPU: nothing unclaimed
    assert Group({1: (0, 0), 2: (1, 1)}).stats(2) == (1, 1, 0)  # nothing queued
    assert g.span() == 30


def test_groups_end_at_gaps_and_complete_once_the_next_begins() -> None:
    grouper = Grouper(trigger=1000)
    for ts, cpu in ((5000, 0), (5010, 1), (7000, 0), (7020, 1), (9000, 0)):
        grouper.add(ts, cpu, 1)
    done = grouper.complete_groups()
    assert [sorted(g.samples) for g in done] == [[5000, 5010], [7000, 7020]]
    assert sorted(grouper.group.samples) == [9000]  # waits for the next round


def test_a_round_that_misses_a_cpu_is_left_out() -> None:
    # the per-CPU sampling events start one after another: the first round may lack a CPU
    grouper = Grouper(trigger=1000, ncpu=2)
    for ts, cpu in ((5000, 0), (7000, 0), (7020, 1), (9000, 0)):
        grouper.add(ts, cpu, 2)
    assert [sorted(g.samples) for g in grouper.complete_groups()] == [[7000, 7020]]


def test_skewed_samples_are_an_error() -> None:
    grouper = Grouper(trigger=1000)
    for ts in (5000, 5900, 7000):
        grouper.add(ts, 0, 1)
    with pytest.raises(SkewError):
        grouper.complete_groups()


def test_csv_columns_and_refused_options(capsys: pytest.CaptureFixture[str]) -> None:
    args = cpuunclaimed.build_parser().parse_args(["-J", "-T"])
    args.csv = True
    assert cpuunclaimed.csv_header(args, 2) == "TIME,TIMESTAMP_ns,CPU0,CPU1,OFFSET_ns_CPU0,OFFSET_ns_CPU1"
    plain = cpuunclaimed.build_parser().parse_args(["-j"])
    assert cpuunclaimed.csv_row(plain, Group({500: (1, 2), 520: (0, 3)}), 2) == "500,3,2"
    assert cpuunclaimed.main(["-j", "1"]) == 2
    assert "cannot use interval with either -j or -J" in capsys.readouterr().err


def _every_cpu_crowded() -> contextlib.AbstractContextManager[None]:
    return busy_loops([c for c in range(NCPU) for _ in range(PER_CPU)])


def _run(*argv: str) -> str:
    out = run_rbcc("tool", "cpuunclaimed", *argv)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return out.stdout


@pytest.mark.needs_root
def test_busy_cpus_leave_nothing_unclaimed() -> None:
    with _every_cpu_crowded():
        out = _run("-T", "1", "2")
    assert out.splitlines()[0] == "Sampling run queues... Output every 1 seconds. Hit Ctrl-C to end.", out
    rows = re.findall(r"^\d\d:\d\d:\d\d %CPU\s+(\d+\.\d\d)%, unclaimed idle (\d+\.\d\d)%$", out, re.M)
    assert len(rows) == 2, out
    # every CPU ran a task in every sample, and none was idle to take the queued ones
    assert all(float(util) >= 95.0 and float(unclaimed) == 0.0 for util, unclaimed in rows), out


@pytest.mark.needs_root
def test_csv_rows_show_each_cpus_queue() -> None:
    with _every_cpu_crowded():
        out = subprocess.Popen(
            [sys.executable, "-m", "rbcc", "tool", "cpuunclaimed", "-J"],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        assert out.stdout is not None
        header = out.stdout.readline().strip()
        rows = [out.stdout.readline().strip() for _ in range(20)]
        out.kill()
        out.wait()
    assert header.split(",") == ["TIMESTAMP_ns"] + [f"CPU{c}" for c in range(NCPU)] + [
        f"OFFSET_ns_CPU{c}" for c in range(NCPU)
    ]
    for row in rows:
        fields = [int(f) for f in row.split(",")]
        lens, offsets = fields[1 : 1 + NCPU], fields[1 + NCPU :]
        assert all(n >= PER_CPU for n in lens), rows
        assert min(offsets) == 0 and max(offsets) < cpuunclaimed.TRIGGER_NS / 2, rows
