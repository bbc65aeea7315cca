"""ext4slower: the C it builds, its kprobe programs loaded through the verifier, and the one line it ends
with on a kernel without kprobes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _bpfutil import child_env

from rbcc import BPF
from rbcc.tools import ext4slower


def _text(*argv: str) -> str:
    return ext4slower.bpf_text(ext4slower.build_parser().parse_args(list(argv)))


def test_options_shape_the_program() -> None:
    assert "if (delta_us <= 10000)" in _text() and "if (0)" in _text("0")
    assert "if (delta_us <= 1000)" in _text("-j", "1") and "if (pid != 185)" in _text("-p", "185")
    assert "iocb->ki_filp, iocb->ki_pos" in _text()


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    b = BPF(text=_text("-p", "1"))
    with b:
        for fn in (
            "trace_rw_entry",
            "trace_open_entry",
            "trace_fsync_entry",
            "trace_read_return",
            "trace_write_return",
            "trace_open_return",
            "trace_fsync_return",
        ):
            assert b.load_func(fn, BPF.KPROBE).fd > 0


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rbcc", "tool", "ext4slower", "0"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("ext4slower: needs kprobes on ext4_file_read_iter") and "CONFIG_KPROBES" in line


def test_ebpf_prints_the_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rbcc", "tool", "ext4slower", "--ebpf"], capture_output=True, text=True, env=child_env()
    )
    assert done.returncode == 0 and "int trace_fsync_return(struct pt_regs *ctx)" in done.stdout, done.stderr
