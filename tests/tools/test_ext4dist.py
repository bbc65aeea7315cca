"""ext4dist: the C it builds, its kprobe programs loaded through the verifier, the one line it ends
with on a kernel without kprobes, and (where kprobes exist) histograms counting the test's own ext4
calls on an ext4 file system of its own."""

from __future__ import annotations

import os
import re

import pytest
from _blockio import EXT4_PROGRAMS
from _bpfutil import run_interrupted
from _ext4fs import ext4_dir, file_work
from _toolcheck import assert_kprobes_load, refusal_line, run_rbcc, text_of

from rbcc.tools import ext4dist


def _text(*argv: str) -> str:
    return text_of(ext4dist, *argv)


def test_options_shape_the_program() -> None:
    plain = _text()
    assert "if (0)" in plain and "/ 1000;" in plain
    assert "/ 1000000;" in _text("-m") and "if (pid != 181)" in _text("-p", "181")
    assert "BPF_HISTOGRAM(dist, struct dist_key_t);" in plain


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(_text("-p", "1"), ("trace_entry", *EXT4_PROGRAMS))


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "ext4dist", "1", "1")
    assert line.startswith("ext4dist: needs kprobes on ext4_file_read_iter") and "CONFIG_KPROBES" in line


def test_ebpf_prints_the_program() -> None:
    done = run_rbcc("tool", "ext4dist", "--ebpf")
    assert done.returncode == 0 and "int trace_fsync_return(struct pt_regs *ctx)" in done.stdout, done.stderr


def _counts(out: str) -> dict[str, int]:
    """Each histogram's operation and the sum of its counts."""
    counts: dict[str, int] = {}
    op = None
    for line in out.splitlines():
        if m := re.match(r"operation = (\w+)$", line):
            op = m.group(1)
            counts[op] = 0
        elif op and (m := re.match(r"\s*\d+ -> \d+\s*: (\d+)\s*\|", line)):
            counts[op] += int(m.group(1))
    return counts


@pytest.mark.needs_kprobes
def test_histograms_count_this_process_ext4_calls() -> None:
    with ext4_dir() as root:
        out, _ = run_interrupted(
            ["tool", "ext4dist", "-p", str(os.getpid())],
            lambda h: h.startswith("Tracing ext4 operation latency"),
            lambda: file_work(root / "rbcc-dist.dat", 5, 3),
        )
    assert "usecs" in out, out
    assert _counts(out) == {"open": 2, "write": 5, "fsync": 1, "read": 3}, out
