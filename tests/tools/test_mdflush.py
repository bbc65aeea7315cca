"""mdflush: its program (flush bios entering md arrays, at block_bio_queue), and a live run in which
the test's own fsync of an md array it built is shown with its pid, comm and the array's name (where
the kernel has the md driver: in the VM of `make test-kernels`)."""

from __future__ import annotations

import os
import re

import pytest
from _bpfutil import own_comm, run_interrupted
from _mdraid import md_array
from _toolcheck import text_of

from rbcc.tools import mdflush


def test_program_keeps_flush_bios_of_md_disks() -> None:
    text = text_of(mdflush)
    assert "RAW_TRACEPOINT_PROBE(block_bio_queue)" in text
    assert "bio->bi_opf & (1U << __REQ_PREFLUSH)" in text and "data.disk[0] != 'm' || data.disk[1] != 'd'" in text


@pytest.mark.needs_root
def test_loads_and_attaches_here() -> None:
    out, _ = run_interrupted(["tool", "mdflush"], lambda h: h.startswith("Tracing md flush requests..."), lambda: None)
    assert re.search(r"^TIME\s+PID\s+COMM\s+DEVICE$", out, re.M), out


@pytest.mark.needs_root
def test_shows_the_tests_flush_of_its_md_array() -> None:
    with md_array() as dev:
        name = os.path.basename(dev)

        def flush() -> None:
            fd = os.open(dev, os.O_RDWR)
            try:
                os.write(fd, b"\x5a" * 4096)
                os.fsync(fd)  # blkdev_fsync: a REQ_PREFLUSH bio to the array
            finally:
                os.close(fd)

        out, _ = run_interrupted(
            ["tool", "mdflush"],
            lambda h: h.startswith("Tracing md flush requests..."),
            flush,
            lambda out: f" {name}\n" in out,
            timeout=30,
        )
    mine = [line.split() for line in out.splitlines() if line.endswith(f" {name}") and f" {os.getpid()} " in line]
    assert mine and mine[0][1:] == [str(os.getpid()), own_comm().decode(), name], out
    assert re.match(r"\d\d:\d\d:\d\d$", mine[0][0]), out
