"""filegone: the calls and filter in its C, and a live run that shows the test's own rename, unlink
and rmdir, each with the test's pid and comm and the names it used."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import text_of

from rbcc.tools import filegone


def test_calls_and_pid_filter() -> None:
    text = text_of(filegone)
    for call in ("unlinkat", "renameat2"):
        assert f"TRACEPOINT_PROBE(syscalls, sys_enter_{call})" in text
        assert f"TRACEPOINT_PROBE(syscalls, sys_exit_{call})" in text
    assert "if (0)" in text and "if (pid != 181)" in text_of(filegone, "-p", "181")
    assert "enter_rmdir" not in filegone.bpf_text(filegone.build_parser().parse_args([]), legacy=False)
    assert "ret == 0" in text  # only calls that succeeded


@pytest.mark.needs_root
def test_shows_the_tests_rename_unlink_and_rmdir() -> None:
    tag = f"rbcc-gone-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:

        def work() -> None:
            old, new, sub = (os.path.join(tmp, f"{tag}-{n}") for n in ("old", "new", "dir"))
            open(old, "w").close()
            os.rename(old, new)
            os.unlink(new)
            os.mkdir(sub)
            os.rmdir(sub)
            try:
                os.unlink(new)  # fails: not shown
            except FileNotFoundError:
                pass

        out, _ = run_interrupted(
            ["tool", "filegone", "-p", str(os.getpid())],
            lambda h: re.match(r"TIME\s+PID\s+COMM\s+ACTION FILE", h) is not None,
            work,
            lambda out: f"{tag}-dir" in out,
        )
    comm = own_comm().decode()
    rows = [line.split(None, 4) for line in out.splitlines()[1:] if tag in line]
    assert [r[1:] for r in rows] == [
        [str(os.getpid()), comm, "RENAME", f"{tag}-old > {tag}-new"],
        [str(os.getpid()), comm, "DELETE", f"{tag}-new"],
        [str(os.getpid()), comm, "DELETE", f"{tag}-dir"],
    ], out
    assert all(re.match(r"\d\d:\d\d:\d\d$", r[0]) for r in rows)
