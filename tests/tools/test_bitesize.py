"""bitesize: a live run that puts the test's own O_DIRECT I/O in the size bucket of its size, under the
test's comm."""

from __future__ import annotations

import re

import pytest
from _blockio import direct_file
from _bpfutil import own_comm, run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import bitesize

COUNT = 10


def _sections(out: str) -> dict[str, dict[str, int]]:
    """Each process's histogram, as {"lo -> hi": count}."""
    hists: dict[str, dict[str, int]] = {}
    current: dict[str, int] = {}
    for line in out.splitlines():
        if m := re.match(r"^Process Name = (.*)$", line):
            current = hists.setdefault(m.group(1), {})
        elif m := re.match(r"^\s+(\d+ -> \d+)\s+: (\d+)\s+\|", line):
            current[m.group(1)] = int(m.group(2))
    return hists


def test_program_counts_issued_bytes_by_comm() -> None:
    text = bitesize.bpf_text(bitesize.build_parser().parse_args([]))
    assert "TRACEPOINT_PROBE(block, block_rq_issue)" in text and "bpf_log2l(args->bytes / 1024)" in text


def test_ebpf_prints_the_program() -> None:
    out = run_rbcc("tool", "bitesize", "--ebpf")
    assert out.returncode == 0 and "struct proc_key_t" in out.stdout, out.stderr


@pytest.mark.needs_root
def test_the_tests_64k_writes_land_in_the_64k_bucket() -> None:
    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "bitesize"], lambda h: h.startswith("Tracing block I/O"), lambda: f.write(COUNT, 65536)
        )
    mine = _sections(out).get(own_comm().decode())
    assert mine is not None, out
    # 64 KiB is 64 Kbytes: log2 bucket 64 -> 127
    assert mine["64 -> 127"] >= COUNT, out
