"""vfsstat: the probes it builds, and a live run that counts the reads, writes, fsyncs, opens and
creates the test itself makes."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import vfsstat


def _text(*argv: str) -> str:
    return text_of(vfsstat, *argv)


def test_every_syscall_of_each_kind_is_counted() -> None:
    text = _text()
    for kind, calls in vfsstat.SYSCALLS.items():
        for call in calls:
            assert f"TRACEPOINT_PROBE(syscalls, sys_exit_{call})" in text
            if kind != "OPEN":
                probe = text.split(f"sys_exit_{call}) {{", 1)[1].split("}", 1)[0]
                assert f"stats.atomic_increment(S_{kind});" in probe and "args->ret < 0" in probe
    assert "return 0;\n}" in text and "return pid != 185;" in _text("-p", "185")


def _totals(out: str) -> list[int]:
    rows = [[int(v) for v in line.split()[1:]] for line in out.splitlines() if re.match(r"^\d\d:\d\d:\d\d: ", line)]
    return [sum(col) for col in zip(*rows)] if rows else [0] * 5


@pytest.mark.needs_root
def test_counts_the_tests_own_calls() -> None:
    with tempfile.TemporaryDirectory() as tmp:

        def work() -> None:
            existing = os.path.join(tmp, "existing")
            with open(existing, "w"):
                pass
            for name in ("new1", "new2"):
                os.close(os.open(os.path.join(tmp, name), os.O_CREAT | os.O_WRONLY))
            fd = os.open(existing, os.O_RDWR)
            for _ in range(5):
                os.write(fd, b"x")
            for _ in range(3):
                os.fsync(fd)
            for _ in range(7):
                os.pread(fd, 1, 0)
            os.close(fd)

        header = lambda h: h.split() == ["TIME", "READ/s", "WRITE/s", "FSYNC/s", "OPEN/s", "CREATE/s"]  # noqa: E731
        out, _ = run_interrupted(
            ["tool", "vfsstat", "-p", str(os.getpid())], header, work, lambda out: _totals(out)[2] >= 3, timeout=5
        )
    reads, writes, fsyncs, opens, creates = _totals(out)
    # the test's threads also read the tool's output: reads and writes are at least the test's own
    assert reads >= 7 and writes >= 5, out
    # three files created ("existing" too), four opens at least
    assert fsyncs == 3 and creates == 3 and opens >= 4, out


@pytest.mark.needs_root
def test_count_ends_it() -> None:
    done = run_rbcc("tool", "vfsstat", "1", "2")
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if re.match(r"^\d\d:\d\d:\d\d: ", line)]) == 2
