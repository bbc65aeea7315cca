"""filelife: the calls and filter in its C, and a live run in which files the test creates, keeps for
a known time and deletes (by a bare name from a directory descriptor, by an absolute path, by mknod)
are shown with its pid and comm, their names and an age of at least that time."""

from __future__ import annotations

import os
import re
import tempfile
import time

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import filelife

KEEP = {"bare": 0.4, "absolute": 0.2, "mknod": 0.3}


def test_calls_and_pid_filter() -> None:
    text = text_of(filelife)
    for call in filelife.CALLS:
        assert f"int enter_{call}(struct tracepoint__syscalls__sys_enter_{call} *args)" in text
        assert f"int leave_{call}(struct tracepoint__syscalls__sys_exit_{call} *args)" in text
    assert "return 0;" in text and "return pid != 181;" in text_of(filelife, "-p", "181")
    assert "(mode & 0x100000)" in text  # FMODE_CREATED: only opens that created their file


def _ages(out: str, tag: str) -> dict[str, float]:
    ages = {}
    for line in out.splitlines():
        r = line.split()
        if len(r) == 5 and r[4].startswith(tag):
            assert r[1:3] == [str(os.getpid()), own_comm().decode()], line
            assert re.match(r"\d\d:\d\d:\d\d$", r[0]), line
            ages[r[4][len(tag) :]] = float(r[3])
    return ages


@pytest.mark.needs_root
def test_shows_the_age_of_the_files_the_test_creates_and_deletes() -> None:
    tag = f"rbcc-life-{os.getpid()}-"
    with tempfile.TemporaryDirectory() as tmp:

        def work() -> None:
            dir_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.close(os.open(tag + "bare", os.O_CREAT | os.O_WRONLY, dir_fd=dir_fd))
                time.sleep(KEEP["bare"])
                os.unlink(tag + "bare", dir_fd=dir_fd)
            finally:
                os.close(dir_fd)
            path = os.path.join(tmp, tag + "absolute")
            with open(path, "w") as f:
                f.write("x")
            time.sleep(KEEP["absolute"])
            os.unlink(path)
            os.mknod(os.path.join(tmp, tag + "mknod"))
            time.sleep(KEEP["mknod"])
            os.unlink(os.path.join(tmp, tag + "mknod"))
            # a file that exists before it is traced ends without a line
            os.unlink(os.path.join(tmp, tag + "old"))

        open(os.path.join(tmp, tag + "old"), "w").close()
        out, _ = run_interrupted(
            ["tool", "filelife", "-p", str(os.getpid())],
            lambda h: re.match(r"TIME\s+PID\s+COMM\s+AGE\(s\)\s+FILE", h) is not None,
            work,
            lambda out: len(_ages(out, tag)) >= 3,
        )
    ages = _ages(out, tag)
    assert sorted(ages) == sorted(KEEP), out
    for name, kept in KEEP.items():
        # printed to 2 decimals; a loaded machine only makes it older
        assert kept - 0.01 <= ages[name] < kept + 3, (name, out)
