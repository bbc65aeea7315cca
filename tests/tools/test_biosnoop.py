"""biosnoop: the C it builds for its options, and live runs that show the O_DIRECT I/O the test issues,
with the test's PID and comm, direction and size."""

from __future__ import annotations

import os

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import own_comm, run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import biosnoop

COUNT = 6


def _text(*argv: str) -> str:
    return text_of(biosnoop, *argv)


def test_options_shape_the_program() -> None:
    plain = _text()
    assert "if (0)" in plain and "if (0 && who->ts" in plain and "rq->q->disk->major !=" not in plain
    assert "if (1)\n        who.ts" in _text("-Q")
    assert "if (1) {\n        struct disk_id_t" in _text("-P")
    assert _text("-d", root_disk()).count("rq->q->disk->major !=") == 2  # at request and at issue


def test_header_follows_the_options() -> None:
    p = biosnoop.build_parser()
    assert biosnoop.header(p.parse_args([])).split() == "TIME(s) COMM PID DISK T SECTOR BYTES LAT(ms)".split()
    assert biosnoop.header(p.parse_args(["-P", "-Q"])).split()[-3:] == ["P", "QUE(ms)", "LAT(ms)"]


def test_ebpf_prints_the_program() -> None:
    out = run_rbcc("tool", "biosnoop", "--ebpf")
    assert out.returncode == 0, out.stderr
    assert "int trace_req_completion(struct bpf_raw_tracepoint_args *ctx)" in out.stdout


def _own_rows(out: str) -> list[list[str]]:
    comm = own_comm().decode()[:14]
    rows = [line.split() for line in out.splitlines()[1:]]
    return [r for r in rows if len(r) >= 8 and r[2] == str(os.getpid()) and r[1] == comm]


def _io(write: int, read: int):  # noqa: ANN202
    holder = {}

    def work() -> None:
        f = holder["f"]
        f.write(COUNT, write)
        f.read(COUNT, read)

    return holder, work


@pytest.mark.needs_root
def test_shows_the_tests_own_writes_and_reads() -> None:
    holder, work = _io(16384, 8192)

    def seen(out: str) -> bool:
        rows = _own_rows(out)
        return sum(r[4] == "R" for r in rows) >= COUNT

    with direct_file() as holder["f"]:
        out, _ = run_interrupted(["tool", "biosnoop"], lambda h: h.split()[:2] == ["TIME(s)", "COMM"], work, seen)
    rows = _own_rows(out)
    writes = [r for r in rows if r[4] == "W" and r[6] == "16384"]
    reads = [r for r in rows if r[4] == "R" and r[6] == "8192"]
    assert len(writes) >= COUNT and len(reads) >= COUNT, out
    assert all(r[3] == root_disk() for r in writes + reads)
    assert all(float(r[7]) >= 0 and int(r[5]) > 0 for r in writes + reads)


@pytest.mark.needs_root
def test_queued_time_pattern_and_disk_filter() -> None:
    holder, work = _io(4096, 4096)

    def seen(out: str) -> bool:
        return sum(r[4] == "R" for r in _own_rows(out)) >= COUNT

    header = lambda h: h.split()[-3:] == ["P", "QUE(ms)", "LAT(ms)"]  # noqa: E731
    with direct_file() as holder["f"]:
        out, _ = run_interrupted(["tool", "biosnoop", "-Q", "-P", "-d", root_disk()], header, work, seen)
    rows = _own_rows(out)
    assert len(rows) >= 2 * COUNT, out
    assert all(len(r) == 10 and r[7] in ("S", "R", "?") and float(r[8]) >= 0 for r in rows)
    # the file's blocks follow each other, and so do the test's I/Os to it
    assert any(r[7] == "S" for r in rows), out
    every = [line.split() for line in out.splitlines()[1:] if line.strip()]
    assert all(r[3] == root_disk() for r in every if len(r) == 10)
