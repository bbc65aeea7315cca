"""cpudist: the C for its options, and live runs that see the off-CPU sleeps and the on-CPU time of a
child the test runs."""

from __future__ import annotations

import re

import pytest
from _bpfutil import run_interrupted
from _schedwork import sections, sleeper, spinner
from _toolcheck import text_of

from rbcc._tools.sched import HIST_LINE, hist_total
from rbcc.tools import cpudist

SLEEPS = 30


def _text(*argv: str) -> str:
    return text_of(cpudist, *argv)


def test_on_and_off_cpu_swap_where_a_switch_starts_and_ends_a_stretch() -> None:
    on = _text()
    assert "update_hist(prev_tgid, prev_pid, cpu, ts);" in on and "store_start(next_tgid" in on
    off = _text("-O")
    assert "store_start(prev_tgid, prev_pid, cpu, ts);" in off and "update_hist(next_tgid" in off


def test_filters_units_and_storage() -> None:
    plain = _text()
    assert "if (0 || pid == 0)" in plain and "delta /= 1000;" in plain and "extension" not in plain
    assert "if (0 || 0)" in _text("-I")
    assert "tgid != 185" in _text("-p", "185")
    assert "delta /= 1000000;" in _text("-m")
    assert ".id = tgid" in _text("-P") and ".id = pid," in _text("-L")
    ext = _text("-e")
    assert "BPF_ARRAY(extension, ext_val_t, 1);" in ext and "lock_xadd(&ext->total, delta);" in ext


def _header(kind: str):  # noqa: ANN202
    return lambda line: line == f"Tracing {kind}-CPU time... Hit Ctrl-C to end.\n"


@pytest.mark.needs_root
def test_off_cpu_sees_each_sleep_of_the_pid() -> None:
    with sleeper(SLEEPS, seconds=0.005) as kid:
        out, _ = run_interrupted(
            ["tool", "cpudist", "-O", "-P", "-p", str(kid.pid)], _header("off"), kid.go, lambda out: kid.finished()
        )
    (label,) = sections(out, "pid")  # -P: the child's process, the only one -p lets in
    assert label.split()[0] == str(kid.pid)
    # each sleep is a stretch off the CPU, and most last the whole 5 ms; Python's sleep() sets its
    # deadline before it blocks, so a preemption just before the syscall takes a bite out of one
    assert hist_total(out) >= SLEEPS, out
    long_waits = sum(int(m[3]) for m in map(HIST_LINE.match, out.splitlines()) if m and int(m[1]) >= 4096)
    assert long_waits >= SLEEPS // 2, out


@pytest.mark.needs_root
def test_on_cpu_time_of_a_spinning_child_in_the_extension_summary() -> None:
    with spinner("rbcc-cpudist", 0.5) as kid:
        out, _ = run_interrupted(
            ["tool", "cpudist", "-e", "-p", str(kid.pid)], _header("on"), kid.go, lambda out: kid.finished()
        )
    assert hist_total(out) >= 1
    (avg, total, count) = map(
        int,
        re.search(r"^avg = (\d+) usecs, total: (\d+) usecs, count: (\d+)$", out, re.M).groups(),  # type: ignore[union-attr]
    )
    assert count == hist_total(out) and avg == total // count
    assert total >= 450_000, out  # the half second of CPU the child burned
