"""gethostlatency: live runs that see this test's getaddrinfo, gethostbyname and gethostbyname2 calls
(numeric hosts: no DNS needed), with their latency, and -p leaving another process's calls out."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys

import pytest
from _bpfutil import own_comm, run_interrupted

HEADER = ["TIME", "PID", "COMM", "LATms", "HOST"]


def _rows(out: str, host: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) == 5 and f[4] == host]


@pytest.mark.needs_root
def test_sees_each_resolver_this_process_calls() -> None:
    libc = ctypes.CDLL(None)
    libc.gethostbyname.restype = ctypes.c_void_p
    libc.gethostbyname2.restype = ctypes.c_void_p
    hosts = {"getaddrinfo": "127.0.0.11", "gethostbyname": "127.0.0.12", "gethostbyname2": "127.0.0.13"}

    def resolve() -> None:
        socket.getaddrinfo(hosts["getaddrinfo"], 80)
        assert libc.gethostbyname(hosts["gethostbyname"].encode())
        assert libc.gethostbyname2(hosts["gethostbyname2"].encode(), socket.AF_INET)

    seen = lambda out: all(_rows(out, h) for h in hosts.values())  # noqa: E731
    out, _ = run_interrupted(["tool", "gethostlatency"], lambda h: h.split() == HEADER, resolve, seen)
    for host in hosts.values():
        (row,) = _rows(out, host)
        assert row[1:3] == [str(os.getpid()), own_comm().decode()]
        assert 0 <= float(row[3]) < 5000


@pytest.mark.needs_root
def test_pid_filter_leaves_other_processes_out() -> None:
    other = "127.0.0.21"
    mine = "127.0.0.22"

    def resolve() -> None:
        code = f"import socket; socket.getaddrinfo({other!r}, 80)"
        subprocess.run([sys.executable, "-c", code], check=True)
        socket.getaddrinfo(mine, 80)

    out, _ = run_interrupted(
        ["tool", "gethostlatency", "-p", str(os.getpid())],
        lambda h: h.split() == HEADER,
        resolve,
        lambda out: bool(_rows(out, mine)),
    )
    assert _rows(out, mine)[0][1] == str(os.getpid())
    assert not _rows(out, other)
