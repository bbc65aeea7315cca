"""biostacks: the C for its options, and a live run in which the test's own O_DIRECT writes to the root
disk show up under its comm, pid and disk, with the stack of the pwrite that made them and a histogram
that counts them."""

from __future__ import annotations

import os
import re

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import biostacks

WRITES = 24


def test_options_shape_the_program() -> None:
    plain = text_of(biostacks)
    assert "/ 1000;" in plain and "rq->q->disk->major !=" not in plain
    assert "/ 1000000;" in text_of(biostacks, "-m")
    assert re.search(
        r"rq->q->disk->major != \d+ \|\| rq->q->disk->first_minor != \d+", text_of(biostacks, "-d", root_disk())
    )
    assert "stacks.get_stackid(ctx, 0)" in plain


def _sections(out: str) -> list[tuple[list[str], list[str], int]]:
    """(header fields, stack frames, total count) of each histogram."""
    found = []
    for block in out.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or "usecs" not in block:
            continue
        if lines[0].startswith("Tracing"):
            lines = lines[1:]
        hist_at = next(i for i, line in enumerate(lines) if "distribution" in line)
        total = sum(int(m.group(1)) for line in lines[hist_at:] if (m := re.search(r": (\d+)\s+\|", line)))
        found.append((lines[0].split(), lines[1:hist_at], total))
    return found


@pytest.mark.needs_root
def test_the_tests_writes_are_counted_under_the_stack_that_made_them() -> None:
    disk = root_disk()
    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "biostacks", "-d", disk],
            lambda h: h.startswith("Tracing block I/O with init stacks."),
            lambda: f.write(WRITES, 4096),
        )
    mine = [s for s in _sections(out) if s[0] == [own_comm().decode()[:14], str(os.getpid()), disk]]
    assert mine, out
    # the pwrite's own stack: the block layer at the top, the system call at the bottom
    by_pwrite = [s for s in mine if any("pwrite64" in frame for frame in s[1])]
    assert by_pwrite, out
    assert sum(s[2] for s in by_pwrite) >= WRITES, out
    assert all(not s[1][0].startswith("bpf_") for s in by_pwrite), out
