"""killsnoop: the C it builds for its filters, and live runs that see the signals this test sends to
its own children, with their results."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import killsnoop


def _text(*argv: str) -> str:
    return text_of(killsnoop, *argv)


def test_filters_for_the_options() -> None:
    assert "if (0)" in _text()
    assert "if (tpid != 189 || pid != 181 || sig != 9)" in _text("-p", "181", "-T", "189", "-s", "9")


HEADER = ["TIME", "PID", "COMM", "SIG", "TPID", "RESULT"]


def _rows(out: str, tpid: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) == 6 and f[4] == str(tpid)]


def _dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    return child.pid


@pytest.mark.needs_root
def test_sees_the_signals_this_process_sends() -> None:
    child = subprocess.Popen(["/bin/sleep", "30"])
    gone = _dead_pid()
    try:

        def workload() -> None:
            os.kill(child.pid, 0)
            os.kill(child.pid, signal.SIGTERM)
            with pytest.raises(ProcessLookupError):
                os.kill(gone, signal.SIGTERM)

        seen = lambda out: bool(_rows(out, gone))  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "killsnoop", "-p", str(os.getpid())], lambda h: h.split() == HEADER, workload, seen
        )
    finally:
        child.kill()
        child.wait()
    me = [str(os.getpid()), own_comm().decode()]
    assert [r[1:] for r in _rows(out, child.pid)] == [
        [*me, "0", str(child.pid), "0"],
        [*me, str(int(signal.SIGTERM)), str(child.pid), "0"],
    ]
    assert [r[1:] for r in _rows(out, gone)] == [[*me, str(int(signal.SIGTERM)), str(gone), "-3"]]  # ESRCH
    assert all(len(r[0]) == 8 and r[0].count(":") == 2 for r in _rows(out, child.pid))


@pytest.mark.needs_root
def test_target_signal_and_failed_filters() -> None:
    child = subprocess.Popen(["/bin/sleep", "30"])
    gone = _dead_pid()
    try:

        def workload() -> None:
            os.kill(child.pid, 0)
            os.kill(child.pid, signal.SIGUSR1)
            with pytest.raises(ProcessLookupError):
                os.kill(gone, signal.SIGUSR1)

        out, _ = run_interrupted(
            ["tool", "killsnoop", "-T", str(child.pid), "-s", str(int(signal.SIGUSR1))],
            lambda h: h.split() == HEADER,
            workload,
            lambda out: bool(_rows(out, child.pid)),
        )
        assert [r[3:] for r in _rows(out, child.pid)] == [[str(int(signal.SIGUSR1)), str(child.pid), "0"]]
        assert not _rows(out, gone)

        gone = _dead_pid()

        def failing() -> None:
            os.kill(os.getpid(), 0)
            with pytest.raises(ProcessLookupError):
                os.kill(gone, 0)

        out, _ = run_interrupted(
            ["tool", "killsnoop", "-x", "-p", str(os.getpid())],
            lambda h: h.split() == HEADER,
            failing,
            lambda out: bool(_rows(out, gone)),
        )
        assert [r[5] for r in _rows(out, gone)] == ["-3"] and not _rows(out, os.getpid())
    finally:
        child.kill()
        child.wait()
