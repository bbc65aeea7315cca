"""runqslower: the C for its options, and live runs that see every wakeup of a child the test makes
sleep (threshold 0), or none of them (a threshold above any wait)."""

from __future__ import annotations

import pytest
from _bpfutil import run_interrupted
from _schedwork import sleeper
from _toolcheck import text_of

from rbcc.tools import runqslower

SLEEPS = 30
COMM = "rbcc-rqslow"


def _text(*argv: str) -> str:
    return text_of(runqslower, *argv)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "delta_us <= 10000" in plain and "tgid != " not in plain and "pid != " not in plain
    assert "delta_us <= 1000)" in _text("1000")
    assert "if (0)" in _text("0")
    assert "tgid != 123" in _text("-p", "123")
    assert "pid != 123" in _text("-t", "123") and "tgid != " not in _text("-t", "123")


def test_pid_and_tid_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        runqslower.build_parser().parse_args(["-p", "1", "-t", "2"])


def _rows(out: str, tid: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()[2:]) if len(f) >= 4 and f[2] == str(tid)]


@pytest.mark.needs_root
def test_threshold_zero_reports_each_wakeup_of_the_pid() -> None:
    with sleeper(SLEEPS, comm=COMM) as kid:
        out, _ = run_interrupted(
            ["tool", "runqslower", "-P", "-p", str(kid.pid), "0"],
            lambda h: h == "Tracing run queue latency higher than 0 us\n",
            kid.go,
            lambda out: kid.finished(),
        )
    assert out.splitlines()[1].split() == ["TIME", "COMM", "TID", "LAT(us)", "PREV", "COMM", "PREV", "TID"]
    rows = _rows(out, kid.pid)
    assert len(rows) >= SLEEPS, out
    assert {f[1] for f in rows} == {COMM}
    # -P: the task it took the CPU from, named and numbered
    assert all(len(f) >= 6 and int(f[3]) >= 0 and int(f[-1]) >= 0 for f in rows), out
    # -p: nothing but the child's thread
    assert len(rows) == len([line for line in out.splitlines()[2:] if line.strip()]), out


@pytest.mark.needs_root
def test_threshold_above_every_wait_reports_nothing() -> None:
    with sleeper(SLEEPS, comm=COMM) as kid:
        out, _ = run_interrupted(
            ["tool", "runqslower", "-t", str(kid.pid), "5000000"],
            lambda h: h.startswith("Tracing run queue latency higher than 5000000 us"),
            kid.go,
            lambda out: kid.finished(),
        )
    assert out.splitlines()[1].split() == ["TIME", "COMM", "TID", "LAT(us)"]
    assert out.splitlines()[2:] == [], out
