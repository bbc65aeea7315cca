"""ext4dist: the C it builds, its kprobe programs loaded through the verifier, and the one line it ends
with on a kernel without kprobes."""

from __future__ import annotations

import pytest
from _blockio import EXT4_PROGRAMS
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
