"""statsnoop: the C it builds, and live runs that see this process's stat(), lstat(), statfs() and
statx() calls on files the test makes, with their results."""

from __future__ import annotations

import ctypes
import os
import tempfile
from pathlib import Path

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc._tools import proc
from rbcc.tools import statsnoop


def _text(*argv: str) -> str:
    return text_of(statsnoop, *argv)


def test_probes_and_filter() -> None:
    plain = _text()
    for name in ("statx", "statfs", "newstat", "newlstat", "newfstatat"):
        assert f"TRACEPOINT_PROBE(syscalls, sys_enter_{name})" in plain
        assert f"TRACEPOINT_PROBE(syscalls, sys_exit_{name})" in plain
    assert "enter(args->pathname)" in plain  # statfs names its path differently
    assert "if (0)" in plain and "if (pid != 181)" in _text("-p", "181")
    only = statsnoop.bpf_text(statsnoop.build_parser().parse_args([]), ["statx"])
    assert "sys_enter_statx" in only and "newstat" not in only


@pytest.mark.needs_root
def test_syscalls_present_here_include_the_common_ones() -> None:
    present = proc.syscalls_present(statsnoop.SYSCALLS)
    assert {"statx", "statfs", "newfstatat"} <= set(present)


def _rows(out: str, path: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.endswith(" " + path)]


HEADER = ["PID", "COMM", "FD", "ERR", "PATH"]


def _statx(path: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    return int(libc.statx(-100, path.encode(), 0, 0x7FF, buf))


@pytest.mark.needs_root
def test_sees_this_process_stats_and_their_errors() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        there = Path(tmp, "there")
        there.write_text("x")
        link = Path(tmp, "link")
        link.symlink_to(there)
        missing = Path(tmp, "missing")
        fs_of = Path(tmp, "fs")
        fs_of.mkdir()
        via_statx = Path(tmp, "statx")
        via_statx.write_text("y")

        def workload() -> None:
            os.stat(there)
            os.lstat(link)
            with pytest.raises(FileNotFoundError):
                os.stat(missing)
            os.statvfs(fs_of)
            assert _statx(str(via_statx)) == 0

        seen = lambda out: bool(_rows(out, str(via_statx)))  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "statsnoop", "-p", str(os.getpid())], lambda h: h.split() == HEADER, workload, seen
        )
    ok = [str(os.getpid()), own_comm().decode(), "0", "0"]
    for path in (there, link, fs_of, via_statx):
        assert _rows(out, str(path)) == [[*ok, str(path)]], path
    assert _rows(out, str(missing)) == [[*ok[:2], "-1", "2", str(missing)]]


@pytest.mark.needs_root
def test_failed_only_with_timestamps() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        there = Path(tmp, "there")
        there.write_text("x")
        missing = Path(tmp, "missing")

        def workload() -> None:
            os.stat(there)
            with pytest.raises(FileNotFoundError):
                os.stat(missing)

        seen = lambda out: bool(_rows(out, str(missing)))  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "statsnoop", "-x", "-t", "-p", str(os.getpid())],
            lambda h: h.split() == ["TIME(s)", *HEADER],
            workload,
            seen,
        )
    assert not _rows(out, str(there))
    (row,) = _rows(out, str(missing))
    assert float(row[0]) >= 0 and row[1] == str(os.getpid()) and row[3:5] == ["-1", "2"]
    assert all(line.split()[4] != "0" for line in out.splitlines()[1:])  # ERR: failures only
