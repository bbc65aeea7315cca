"""runqlat: the C for its options, and live runs that count the wakeups of a child the test makes sleep."""

from __future__ import annotations

import re

import pytest
from _bpfutil import run_interrupted
from _schedwork import sections, sleeper
from _toolcheck import run_rbcc, text_of

from rbcc._tools.sched import hist_total
from rbcc.tools import runqlat

SLEEPS = 40


def _text(*argv: str) -> str:
    return text_of(runqlat, *argv)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "tgid != " not in plain and "delta /= 1000;" in plain and "BPF_HISTOGRAM(dist);" in plain
    assert "prev->__state == TASK_RUNNING" in plain
    assert "tgid != 185" in _text("-p", "185")
    assert "delta /= 1000000;" in _text("-m")
    assert ".id = tgid" in _text("-P") and "pid_key_t" in _text("-P")
    assert ".id = pid," in _text("-L")
    pidns = _text("--pidnss")
    assert "pid_namespace(task)" in pidns and pidns.index("u32 pid_namespace(") < pidns.index("int on_switch(")


def test_bad_arguments_are_refused() -> None:
    for argv in (["-p", "abc"], ["0"], ["1", "x"]):
        with pytest.raises(SystemExit):
            runqlat.build_parser().parse_args(argv)


def _header(line: str) -> bool:
    return line.startswith("Tracing run queue latency")


@pytest.mark.needs_root
def test_counts_every_wakeup_of_the_pid_it_is_given() -> None:
    with sleeper(SLEEPS) as kid:
        out, _ = run_interrupted(["tool", "runqlat", "-p", str(kid.pid)], _header, kid.go, lambda out: kid.finished())
    assert "usecs" in out and "count     distribution" in out
    total = hist_total(out)
    # every sleep ends in a wakeup and a wait for the CPU; -p keeps the rest of the system out
    assert SLEEPS <= total <= 3 * SLEEPS + 30, out


@pytest.mark.needs_root
def test_per_thread_sections_in_milliseconds() -> None:
    with sleeper(SLEEPS) as kid:
        out, _ = run_interrupted(
            ["tool", "runqlat", "-m", "-L", "-p", str(kid.pid)], _header, kid.go, lambda out: kid.finished()
        )
    by_tid = sections(out, "tid")
    assert list(by_tid) == [str(kid.pid)], out
    assert "msecs" in by_tid[str(kid.pid)] and hist_total(by_tid[str(kid.pid)]) >= SLEEPS


@pytest.mark.needs_root
def test_intervals_with_timestamps_end_after_count() -> None:
    out = run_rbcc("tool", "runqlat", "-T", "1", "2")
    assert out.returncode == 0, out.stderr
    stamps = re.findall(r"^\d\d:\d\d:\d\d\s*$", out.stdout, re.M)
    assert len(stamps) == 2 and out.stdout.count("usecs") == 2, out.stdout
    assert hist_total(out.stdout) > 0
