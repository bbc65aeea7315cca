"""shmsnoop: bcc's flag text, the C of its filters, and a live run that sees a child's shmget, shmat,
shmdt and shmctl with their arguments and results."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _bpfutil import run_interrupted
from _toolcheck import text_of

from rbcc.tools import shmsnoop

HEADER = ["PID", "COMM", "SYS", "RET", "ARGs"]

# Makes a segment, attaches it read-only, detaches it and removes it, then prints its id and address.
CHILD = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
sys.stdin.readline()
shmid = libc.shmget(0x5eed, 8192, 0o1600)
addr = libc.shmat(shmid, None, 0o10000)
libc.shmdt(ctypes.c_void_p(addr))
libc.shmctl(shmid, 0, None)
bad = libc.shmdt(ctypes.c_void_p(addr))
print(shmid, addr, bad, flush=True)
"""


def test_flags_as_bcc_writes_them() -> None:
    assert shmsnoop.flags_text(0, shmsnoop.SHMGET_FLAGS) == "0x0"
    assert shmsnoop.flags_text(0o1600, shmsnoop.SHMGET_FLAGS) == "0x380 (IPC_CREAT|0600)"
    assert shmsnoop.flags_text(0o3000, shmsnoop.SHMGET_FLAGS) == "0x600 (IPC_CREAT|IPC_EXCL)"
    assert shmsnoop.flags_text(0o10000, shmsnoop.SHMAT_FLAGS) == "0x1000 (SHM_RDONLY)"
    assert shmsnoop.flags_text(0o7, shmsnoop.SHMAT_FLAGS) == "0x7 (07)"


def test_filters() -> None:
    for name in ("shmget", "shmat", "shmdt", "shmctl"):
        assert f"sys_enter_{name})" in text_of(shmsnoop) and f"sys_exit_{name})" in text_of(shmsnoop)
    assert "if (0)" in text_of(shmsnoop)
    assert "if (pid != 181)" in text_of(shmsnoop, "-p", "181")
    assert "if (tid != 123)" in text_of(shmsnoop, "-t", "123", "-p", "181")


def _run(*options: str, by_pid: str = "") -> tuple[subprocess.Popen[str], str, list[str]]:
    """Run shmsnoop with ``options`` (and ``by_pid`` followed by the child's pid) over the child's calls."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    result: list[str] = []

    def workload() -> None:
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        result.extend(child.stdout.readline().split())  # type: ignore[union-attr]
        child.wait()

    argv = ["tool", "shmsnoop", *options] + ([by_pid, str(child.pid)] if by_pid else [])
    expect = 0 if "nomatch" in options else 5
    try:
        out, _ = run_interrupted(
            argv,
            lambda h: h.split()[-4:] == HEADER[1:],
            workload,
            lambda out: out.count(f" {child.pid} ") >= expect,
        )
    finally:
        child.kill()
        child.wait()
    return child, out, result


@pytest.mark.needs_root
def test_pid_tid_and_name_filters() -> None:
    child, out, _ = _run(by_pid="-t")
    lines = out.splitlines()
    assert lines[0].split()[0] == "TID" and len(lines) == 6, out
    assert all(line.split()[0] == str(child.pid) for line in lines[1:]), out
    child, out, _ = _run("-n", "nomatch", by_pid="-p")
    assert out.splitlines()[1:] == [], out


@pytest.mark.needs_root
def test_shows_each_call_with_its_arguments_and_result() -> None:
    child, out, (shmid, addr, bad) = _run("-T", "-n", "python")
    assert bad == "-1"
    rows = [line for line in out.splitlines()[1:] if line.split()[1] == str(child.pid)]
    fields = [r.split(None, 5) for r in rows]
    assert [f[3] for f in fields] == ["SHMGET", "SHMAT", "SHMDT", "SHMCTL", "SHMDT"], out
    assert [f[4] for f in fields] == [
        f"{int(shmid):x}",
        f"{int(addr):x}",
        "0",
        "0",
        "ffffffffffffffea",  # -EINVAL, as bcc prints a negative result
    ], out
    assert [f[5] for f in fields] == [
        "key: 0x5eed, size: 8192, shmflg: 0x380 (IPC_CREAT|0600)",
        f"shmid: 0x{int(shmid):x}, shmaddr: 0x0, shmflg: 0x1000 (SHM_RDONLY)",
        f"shmaddr: 0x{int(addr):x}",
        f"shmid: 0x{int(shmid):x}, cmd: 0, buf: 0x0",
        f"shmaddr: 0x{int(addr):x}",
    ], out
    stamps = [float(f[0]) for f in fields]
    assert stamps == sorted(stamps) and all(f[2] == "python3"[: len(f[2])] for f in fields), out
