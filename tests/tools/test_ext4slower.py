"""ext4slower: the C it builds, its kprobe programs loaded through the verifier, and the one line it ends
with on a kernel without kprobes."""

from __future__ import annotations

import pytest
from _blockio import EXT4_PROGRAMS
from _toolcheck import assert_kprobes_load, refusal_line, run_rbcc, text_of

from rbcc.tools import ext4slower


def _text(*argv: str) -> str:
    return text_of(ext4slower, *argv)


def test_options_shape_the_program() -> None:
    assert "if (delta_us <= 10000)" in _text() and "if (0)" in _text("0")
    assert "if (delta_us <= 1000)" in _text("-j", "1") and "if (pid != 185)" in _text("-p", "185")
    assert "iocb->ki_filp, iocb->ki_pos" in _text()


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(_text("-p", "1"), ("trace_rw_entry", *EXT4_PROGRAMS))


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "ext4slower", "0")
    assert line.startswith("ext4slower: needs kprobes on ext4_file_read_iter") and "CONFIG_KPROBES" in line


def test_ebpf_prints_the_program() -> None:
    done = run_rbcc("tool", "ext4slower", "--ebpf")
    assert done.returncode == 0 and "int trace_fsync_return(struct pt_regs *ctx)" in done.stdout, done.stderr
