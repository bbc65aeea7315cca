"""dirtop: the directories its globs name and the C that matches them, and a live run whose table
counts the test's own reads and writes of files under its own directories (the outermost one each is
under), with kilobytes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _toolcheck import text_of

from rbcc._tools import block
from rbcc.tools import dirtop


def test_globs_name_each_directory_once_and_the_program_matches_them() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for sub in ("a1", "a2", "b"):
            os.mkdir(os.path.join(tmp, sub))
        said: list[str] = []
        dirs = dirtop.directories(f"{tmp}/a*,{tmp}/a1,{tmp}/b", said.append)
        assert [d[0] for d in dirs] == [f"{tmp}/a1", f"{tmp}/a2", f"{tmp}/b"]
        assert said[2] == f"Skipping {tmp}/a1 as already considered"
        st = os.stat(os.path.join(tmp, "b"))
        dev = block.mkdev(os.major(st.st_dev), os.minor(st.st_dev))
        text = text_of(dirtop, "-d", f"{tmp}/b", "-p", "33")
        assert f"if (ino == {st.st_ino} && dev == {dev}) return 0;" in text and "if (tgid != 33)" in text
        many = ",".join(os.path.join(tmp, f"m{i}") for i in range(20))
        for path in many.split(","):
            os.mkdir(path)
        assert len(dirtop.directories(many, said.append)) == dirtop.MAX_DIRS and said[-1].endswith("limit reached")


def _rows(out: str) -> dict[str, list[int]]:
    """[reads, writes, R_Kb, W_Kb] by PATH, summed over the intervals."""
    rows: dict[str, list[int]] = {}
    for r in (line.split() for line in out.splitlines()):
        if len(r) == 5 and all(v.isdigit() for v in r[:4]):
            rows[r[4]] = [a + int(b) for a, b in zip(rows.get(r[4], [0] * 4), r[:4])]
    return rows


@pytest.mark.needs_root
def test_counts_the_tests_reads_and_writes_under_its_directories() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        top, other = Path(tmp) / "top", Path(tmp) / "other"
        (top / "inner" / "deep").mkdir(parents=True)
        other.mkdir()

        def work() -> None:
            fd = os.open(top / "inner" / "deep" / "f", os.O_CREAT | os.O_RDWR)
            for _ in range(5):
                os.write(fd, b"w" * 4096)
            for _ in range(3):
                os.pread(fd, 8192, 0)
            os.close(fd)
            fd = os.open(other / "g", os.O_CREAT | os.O_RDWR)
            os.write(fd, b"x" * 2048)
            os.close(fd)

        out, _ = run_interrupted(
            ["tool", "dirtop", "-C", "-p", str(os.getpid()), "-d", f"{top},{top}/inner,{other}"],
            lambda h: h.startswith(f"Considering {top} with inode_id"),
            work,
            lambda out: _rows(out).get(str(other), [0])[0:2] == [0, 1],
        )
    rows = _rows(out)
    # the file under top/inner counts for top, the outermost directory it is under
    assert rows.get(str(top)) == [3, 5, 24, 20], out
    assert rows.get(str(other)) == [0, 1, 0, 2], out
    assert str(top / "inner") not in rows, out
    assert out.rstrip().endswith("Detaching...")
