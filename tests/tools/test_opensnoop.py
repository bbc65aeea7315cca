"""opensnoop: the C it builds for its options, and live runs that see the files this test opens
(open/openat from Python, openat2 by raw syscall), their fds and errors, flags and full paths."""

from __future__ import annotations

import ctypes
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import opensnoop


def _args(*argv: str):  # noqa: ANN202 (argparse.Namespace)
    return opensnoop.build_parser().parse_args(list(argv))


def _text(*argv: str) -> str:
    return opensnoop.bpf_text(_args(*argv))


def test_filters_for_the_options() -> None:
    plain = _text()
    assert "if (0 || 0 || container_should_be_filtered())" in plain
    assert "pid != 181 ||" in _text("-p", "181")
    assert "tid != 7 ||" in _text("-p", "181", "-t", "7") and "pid != 181" not in _text("-p", "181", "-t", "7")
    assert "uid != 1000" in _text("-u", "1000")
    assert f"!(flags & {os.O_WRONLY | os.O_RDWR})" in _text("-f", "O_WRONLY", "-f", "O_RDWR")
    assert "pwd.dentry" in _text("-F") and "pwd.dentry" not in plain
    assert "cgroupset" in _text("--cgroupmap", "/sys/fs/bpf/x")


def test_probes_only_the_syscalls_given() -> None:
    text = opensnoop.bpf_text(_args(), ["openat"])
    assert "sys_enter_openat)" in text and "sys_exit_openat)" in text
    assert "sys_enter_open)" not in text and "openat2" not in text
    assert "sys_enter_openat2)" in _text()


def test_bad_flag_is_refused() -> None:
    out = run_rbcc("tool", "opensnoop", "-f", "WRONLY")
    assert out.returncode == 2 and "Bad flag: WRONLY" in out.stderr


def _rows(out: str, path: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.endswith(" " + path)]


HEADER = ["PID", "COMM", "FD", "ERR", "PATH"]


@pytest.mark.needs_root
def test_sees_the_files_this_process_opens() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        there = Path(tmp, "there")
        there.write_text("x")
        missing = Path(tmp, "missing")
        fds: list[int] = []

        def workload() -> None:
            fd = os.open(there, os.O_RDONLY)
            fds.append(fd)
            os.close(fd)
            with pytest.raises(FileNotFoundError):
                os.open(missing, os.O_RDONLY)

        seen = lambda out: bool(_rows(out, str(missing)))  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "opensnoop", "-p", str(os.getpid())], lambda h: h.split() == HEADER, workload, seen
        )
    comm = own_comm().decode()
    assert _rows(out, str(there)) == [[str(os.getpid()), comm, str(fds[0]), "0", str(there)]]
    assert _rows(out, str(missing)) == [[str(os.getpid()), comm, "-1", "2", str(missing)]]
    assert all(r[0] == str(os.getpid()) for r in (line.split() for line in out.splitlines()[1:]))


AT_FDCWD = -100
SYS_OPENAT2 = 437  # x86_64


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _openat2(path: str, flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    how = OpenHow(flags, 0o600, 0)
    fd = libc.syscall(SYS_OPENAT2, AT_FDCWD, path.encode(), ctypes.byref(how), ctypes.sizeof(how))
    assert fd >= 0, os.strerror(ctypes.get_errno())
    return int(fd)


@pytest.mark.needs_root
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="openat2's syscall number is x86_64's here")
def test_flags_filter_extended_fields_uid_and_openat2() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        read = Path(tmp, "read")
        read.write_text("x")
        written = Path(tmp, "written")
        via_openat2 = Path(tmp, "openat2")

        def workload() -> None:
            os.close(os.open(read, os.O_RDONLY))
            os.close(os.open(written, os.O_WRONLY | os.O_CREAT, 0o600))
            os.close(_openat2(str(via_openat2), os.O_WRONLY | os.O_CREAT))

        header = lambda h: h.split() == ["TIME(s)", "UID", *HEADER[:4], "FLAGS", "PATH"]  # noqa: E731
        seen = lambda out: bool(_rows(out, str(via_openat2)))  # noqa: E731
        argv = ["tool", "opensnoop", "-T", "-U", "-e", "-f", "O_WRONLY", "-p", str(os.getpid())]
        out, _ = run_interrupted(argv, header, workload, seen)
    assert not _rows(out, str(read))  # -f O_WRONLY leaves the read-only open out
    for path in (written, via_openat2):
        (row,) = _rows(out, str(path))
        float(row[0])
        assert row[1:3] == ["0", str(os.getpid())] and row[5] == "0"
        assert int(row[6], 8) & (os.O_WRONLY | os.O_CREAT) == os.O_WRONLY | os.O_CREAT


@pytest.mark.needs_root
def test_full_path_of_relative_names_across_a_mount() -> None:
    # /dev/shm is its own tmpfs mount: the walk must go on from its mount point to /
    base = Path("/dev/shm") if os.path.ismount("/dev/shm") else Path(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        sub = Path(tmp, "sub")
        sub.mkdir()
        name = f"rel-{os.getpid()}"

        def workload() -> None:
            before = os.getcwd()
            os.chdir(sub)
            try:
                os.close(os.open(name + "-made", os.O_CREAT | os.O_WRONLY, 0o600))
                with pytest.raises(FileNotFoundError):
                    os.open(name, os.O_RDONLY)
            finally:
                os.chdir(before)

        seen = lambda out: bool(_rows(out, f"{sub}/{name}"))  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "opensnoop", "-F", "-x", "-p", str(os.getpid())], lambda h: h.split() == HEADER, workload, seen
        )
    (row,) = _rows(out, f"{sub}/{name}")
    assert row[0] == str(os.getpid()) and row[2:4] == ["-1", "2"]
    assert name + "-made" not in out  # -x: the successful open is left out


@pytest.mark.needs_root
def test_tid_filter_shows_one_thread() -> None:
    ready, go, done = threading.Event(), threading.Event(), threading.Event()
    tids: list[int] = []
    name = f"/nonexistent/tid-{os.getpid()}"

    def opener() -> None:
        tids.append(threading.get_native_id())
        ready.set()
        go.wait(20)
        for _ in range(2):
            with pytest.raises(FileNotFoundError):
                os.open(name, os.O_RDONLY)
        done.set()

    t = threading.Thread(target=opener)
    t.start()
    ready.wait(5)
    try:

        def workload() -> None:
            with pytest.raises(FileNotFoundError):
                os.open(name + "-main", os.O_RDONLY)
            go.set()
            done.wait(5)

        out, _ = run_interrupted(
            ["tool", "opensnoop", "-t", str(tids[0])],
            lambda h: h.split() == ["TID", *HEADER[1:]],
            workload,
            lambda out: len(_rows(out, name)) == 2,
        )
    finally:
        go.set()
        t.join()
    assert _rows(out, name) == [[str(tids[0]), own_comm().decode(), "-1", "2", name]] * 2
    assert not _rows(out, name + "-main")


@pytest.mark.needs_root
def test_duration_ends_the_trace() -> None:
    start = time.monotonic()
    out = run_rbcc("tool", "opensnoop", "-d", "1", "-p", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == HEADER and time.monotonic() - start < 30
