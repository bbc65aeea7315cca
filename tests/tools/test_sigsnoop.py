"""sigsnoop: the C of its filters and sources, signal names, and live runs that see the signals this
test sends to its own children (system-wide at signal_generate, and at the kill syscalls with -k)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import sigsnoop

HEADER = ["TIME", "PID", "COMM", "SIG", "TPID", "TCOMM", "RESULT"]


def test_sources_and_filters() -> None:
    text = text_of(sigsnoop)
    assert "TRACEPOINT_PROBE(signal, signal_generate)" in text and "sys_enter_kill" not in text
    assert "(0) || !(0xffffffffffffffffULL" in text
    killed = text_of(sigsnoop, "-k", "-x", "-p", "42", "-s", "1,9,15")
    for tp in ("kill", "tkill", "tgkill"):
        assert f"sys_enter_{tp})" in killed and f"sys_exit_{tp})" in killed
    assert "(pid != 42) || !(0x4101ULL" in killed
    assert "if (!1 || ret < 0)" in killed


def test_signal_names() -> None:
    assert [sigsnoop.signal_name(s) for s in (0, 1, 6, 10, 17, 31, 34, 64)] == [
        "N/A",
        "SIGHUP",
        "SIGABRT",
        "SIGUSR1",
        "SIGCHLD",
        "SIGSYS",
        "SIGNAL-34",
        "SIGNAL-64",
    ]


def _rows(out: str, tpid: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) >= 6 and f[4] == str(tpid)]


def _dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    return child.pid


@pytest.mark.needs_root
def test_sees_a_signal_sent_to_a_child_with_its_target_name() -> None:
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:

        def workload() -> None:
            os.kill(child.pid, signal.SIGUSR1)  # the child dies of it: its parent gets a SIGCHLD too
            child.wait()

        out, _ = run_interrupted(
            ["tool", "sigsnoop", "-n", "-p", str(os.getpid())],
            lambda h: h.split() == HEADER,
            workload,
            lambda out: bool(_rows(out, child.pid)),
        )
    finally:
        child.kill()
        child.wait()
    me = [str(os.getpid()), own_comm().decode()]
    assert [r[1:] for r in _rows(out, child.pid)] == [[*me, "SIGUSR1", str(child.pid), "sleep", "0"]], out
    # -p keeps this process's signals only: not the SIGCHLD the dying child sent
    assert all(r[1] == str(os.getpid()) for r in (line.split() for line in out.splitlines()[1:])), out


@pytest.mark.needs_root
def test_kill_syscalls_with_their_results_and_filters() -> None:
    child = subprocess.Popen(["/bin/sleep", "30"])
    gone = _dead_pid()
    try:

        def workload() -> None:
            os.kill(child.pid, 0)  # no signal made: no target name
            os.kill(child.pid, signal.SIGUSR2)
            signal.pthread_kill(threading.get_ident(), 0)  # tgkill to this very thread: not this -s
            with pytest.raises(ProcessLookupError):
                os.kill(gone, signal.SIGUSR2)

        out, _ = run_interrupted(
            ["tool", "sigsnoop", "-k", "-p", str(os.getpid()), "-s", f"{int(signal.SIGUSR2)},{int(signal.SIGTERM)}"],
            lambda h: h.split() == HEADER,
            workload,
            lambda out: bool(_rows(out, gone)),
        )
        me = [str(os.getpid()), own_comm().decode()]
        usr2 = str(int(signal.SIGUSR2))
        assert [r[1:] for r in _rows(out, child.pid)] == [[*me, usr2, str(child.pid), "sleep", "0"]], out
        assert [r[1:] for r in _rows(out, gone)] == [[*me, usr2, str(gone), "-3"]], out  # ESRCH
        assert len(out.splitlines()) == 3, out

        gone = _dead_pid()

        def failing() -> None:
            os.kill(child.pid, 0)
            with pytest.raises(ProcessLookupError):
                os.kill(gone, 0)

        out, _ = run_interrupted(
            ["tool", "sigsnoop", "-k", "-x", "-p", str(os.getpid())],
            lambda h: h.split() == HEADER,
            failing,
            lambda out: bool(_rows(out, gone)),
        )
        assert [r[3:] for r in _rows(out, gone)] == [["0", str(gone), "-3"]] and not _rows(out, child.pid), out
    finally:
        child.kill()
        child.wait()
