"""drsnoop: the C it builds for its options, live runs that load and attach it with every option and
stop after -d seconds, and (in the VM of `make test-kernels` only) the direct reclaim of a child that
fills memory until the OOM killer ends it.

Direct reclaim happens only when the whole machine runs short of free pages (a memory cgroup at its
limit reclaims through vmscan:mm_vmscan_memcg_reclaim_*, not the direct-reclaim tracepoints drsnoop
reads): running a shared machine out of memory is not safe, so that test runs only in the VM, whose
memory is its own and which has no swap, so the child's allocations cannot be paged out."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import drsnoop


def _args(*argv: str):  # noqa: ANN202
    return drsnoop.build_parser().parse_args(list(argv))


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = drsnoop.bpf_text(_args())
    assert "if (0 || 0)" in plain and "if (0)   //" in plain
    assert "if (pid != 181 || 0)" in drsnoop.bpf_text(_args("-p", "181"))
    # a TID wins over a PID
    assert "if (tid != 7 || uid != 1000)" in drsnoop.bpf_text(_args("-p", "181", "-t", "7", "-u", "1000"))
    assert "(const void *)0xffffffff81234560ULL" in drsnoop.bpf_text(_args("-v"), 0xFFFFFFFF81234560)


def test_header_follows_the_options() -> None:
    assert drsnoop.header(_args()).split() == ["COMM", "PID", "LAT(ms)", "PAGES"]
    assert drsnoop.header(_args("-T", "-U", "-t", "1", "-v")).split() == [
        "TIME(s)",
        "UID",
        "COMM",
        "TID",
        "LAT(ms)",
        "PAGES",
        "FREE(KB)",
    ]


@pytest.mark.needs_root
@pytest.mark.parametrize("argv", [["-T", "-U", "-v"], ["-p", str(os.getpid()), "-u", "0", "-n", "python"], ["-t", "1"]])
def test_attaches_and_stops_after_its_duration(argv: list[str]) -> None:
    began = time.monotonic()
    done = run_rbcc("tool", "drsnoop", "-d", "1", *argv)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.splitlines()[0] == drsnoop.header(_args(*argv))
    assert time.monotonic() - began >= 1


# Fills memory 64 MiB at a time (each byte written, so each page is there) until it is killed. The OOM
# killer picks it: its oom_score_adj is the highest there is.
HOG = """
import sys
with open("/proc/self/oom_score_adj", "w") as f:
    f.write("1000")
with open("/proc/self/comm", "w") as f:
    f.write("rbcc-memhog")
sys.stdin.readline()
chunks = []
while True:
    chunks.append(b"\\x01" * (64 << 20))
"""


def _kernel_log() -> int:
    """/dev/kmsg, read from its end on (non-blocking)."""
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(fd, 0, os.SEEK_END)
    return fd


def _records(fd: int) -> list[str]:
    records = []
    while True:
        try:
            records.append(os.read(fd, 8192).decode("utf-8", "replace"))
        except BlockingIOError:
            return records
        except BrokenPipeError:  # records overwritten while we read: go on with the next
            continue


@pytest.mark.needs_root
@pytest.mark.skipif(
    not os.environ.get("RBCC_IN_VM"), reason="needs a machine that may run out of memory: the VM of make test-kernels"
)
def test_shows_the_direct_reclaim_of_a_child_filling_memory() -> None:
    log = _kernel_log()
    child = subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.PIPE)
    try:

        def fill() -> None:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            child.stdin.close()
            child.wait(timeout=120)

        out, _ = run_interrupted(
            ["tool", "drsnoop", "-p", str(child.pid)],
            lambda h: h.split() == ["COMM", "PID", "LAT(ms)", "PAGES"],
            fill,
            lambda out: len(out.splitlines()) >= 1,
            timeout=5,
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        kernel = "".join(_records(log))
        os.close(log)
    assert child.returncode == -9, child.returncode
    # the OOM killer ended the child, and no one else
    killed = [line for line in kernel.splitlines() if "Killed process" in line]
    assert killed and all(f"Killed process {child.pid} (rbcc-memhog)" in line for line in killed), kernel
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows and all(len(row) == 4 for row in rows), out
    assert {(comm, pid) for comm, pid, _, _ in rows} == {("rbcc-memhog", str(child.pid))}, out
    # stalls of the allocating task (taking time, but not minutes), each freeing at most all the memory
    lats = [float(lat) for _, _, lat, _ in rows]
    assert all(0 <= lat < 60_000 for lat in lats) and sum(lats) > 0, out
    assert all(0 <= int(pages) <= os.sysconf("SC_PHYS_PAGES") for _, _, _, pages in rows), out
