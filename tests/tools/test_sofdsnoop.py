"""sofdsnoop: the C of its filters, and a live run that sees a child pass two open files over a Unix
socket pair (socket.send_fds / recv_fds): both sent with their names, both received as the new
descriptors the child reports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _bpfutil import run_interrupted
from _toolcheck import text_of

from rbcc.tools import sofdsnoop

HEADER = ["ACTION", "TID", "COMM", "SOCKET", "FD", "NAME"]

# Passes two files from one end of a socket pair to the other, says which descriptors were sent and
# received, and keeps them open until its input ends.
CHILD = r"""
import socket, sys
a, b = socket.socketpair()
files = [open("/etc/hostname"), open("/etc/passwd")]
socket.send_fds(a, [b"x"], [f.fileno() for f in files])
msg, fds, flags, addr = socket.recv_fds(b, 10, 4)
print(a.fileno(), b.fileno(), *[f.fileno() for f in files], *fds, flush=True)
sys.stdin.read()
"""


def test_filters() -> None:
    assert "return !(0);" in text_of(sofdsnoop)
    assert "return !(pid != 181);" in text_of(sofdsnoop, "-p", "181")
    assert "return !(tid != 123);" in text_of(sofdsnoop, "-t", "123", "-p", "181")
    text = text_of(sofdsnoop)
    assert "sys_enter_sendmsg)" in text and "sys_exit_recvmsg)" in text


def _rows(out: str, pid: int, stamped: bool = True) -> list[list[str]]:
    """The lines of thread ``pid``, without their time stamp (-T)."""
    lines = [line.split()[1:] if stamped else line.split() for line in out.splitlines()]
    return [f for f in lines if len(f) >= 5 and f[1] == str(pid)]


@pytest.mark.needs_root
def test_sees_a_child_pass_two_files() -> None:
    children: list[subprocess.Popen[str]] = []
    numbers: list[int] = []

    def workload() -> None:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None
        numbers.extend(int(n) for n in child.stdout.readline().split())

    try:
        out, _ = run_interrupted(
            ["tool", "sofdsnoop", "-T", "-n", "python"],
            lambda h: h.split()[1:] == HEADER,
            workload,
            lambda out: len(_rows(out, children[0].pid)) >= 4,
        )
    finally:
        for child in children:
            child.kill()
            child.wait()
    sock_a, sock_b, sent1, sent2, got1, got2 = numbers
    mine = _rows(out, children[0].pid)
    assert [r[0] for r in mine] == ["SEND", "SEND", "RECV", "RECV"], out
    assert [r[4] for r in mine] == [str(sent1), str(sent2), str(got1), str(got2)], out
    assert [r[3].split(":")[0] for r in mine] == [str(sock_a)] * 2 + [str(sock_b)] * 2, out
    assert all(r[3].split(":", 1)[1].startswith("socket:[") for r in mine), out
    assert [r[5:] for r in mine] == [["/etc/hostname"], ["/etc/passwd"], [], []], out


@pytest.mark.needs_root
def test_name_filter_leaves_others_out() -> None:
    children: list[subprocess.Popen[str]] = []

    def workload() -> None:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None
        child.stdout.readline()

    try:
        out, _ = run_interrupted(["tool", "sofdsnoop", "-n", "nomatch"], lambda h: h.split() == HEADER, workload)
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert not _rows(out, children[0].pid, stamped=False) and len(out.splitlines()) == 1, out
