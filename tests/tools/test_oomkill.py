"""oomkill: a live run that sees the OOM kill of a process the test starts in a small memory cgroup:
who triggered it, who was killed, and the cgroup's limit in pages."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from _bpfutil import run_interrupted
from _memcg import joiner, memory_cgroup

from rbcc.tools import oomkill

LIMIT = 48 << 20

# Names itself, then allocates (and touches) 1 MiB at a time, far past the limit; exits 3 if never killed.
HOG = r"""
import ctypes
ctypes.CDLL(None).prctl(15, b"rbcc-oomhog", 0, 0, 0)
hold = []
for _ in range(1024):
    hold.append(bytearray(b"\x01") * (1 << 20))
raise SystemExit(3)
"""


def test_program_reads_the_victim_from_mark_victim() -> None:
    text = oomkill.bpf_text(oomkill.build_parser().parse_args([]))
    assert "int trace_mark_victim(struct bpf_raw_tracepoint_args *ctx)" in text
    assert "i < 16 && css" in text


def test_pages_fall_back_to_the_whole_memory() -> None:
    class E:
        fpid, tpid, fcomm, tcomm = 1, 2, b"a", b"b"
        pages = 0

    assert f", {oomkill.total_pages()} pages," in oomkill.line(E(), "0.00", oomkill.total_pages())
    E.pages = 100
    assert ', OOM kill of PID 2 ("b"), 100 pages, loadavg: 0.00' in oomkill.line(E(), "0.00", 10**9)


@pytest.mark.needs_root
def test_sees_the_kill_of_the_tests_memory_hog() -> None:
    victims: list[int] = []

    def hog() -> None:
        child = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=joiner(cgroup))
        victims.append(child.pid)
        assert child.wait(timeout=30) == -9  # SIGKILL by the OOM killer, not its own exit

    with memory_cgroup(LIMIT) as cgroup:
        out, _ = run_interrupted(
            ["tool", "oomkill"],
            lambda h: h.startswith("Tracing OOM kills"),
            hog,
            lambda out: "rbcc-oomhog" in out,
        )
    pid = victims[0]
    m = re.search(
        rf'^\d\d:\d\d:\d\d Triggered by PID {pid} \("rbcc-oomhog"\), OOM kill of PID {pid} \("rbcc-oomhog"\), '
        r"(\d+) pages, loadavg: \d+\.\d\d",
        out,
        re.M,
    )
    assert m, out
    assert int(m.group(1)) == LIMIT // os.sysconf("SC_PAGE_SIZE")
