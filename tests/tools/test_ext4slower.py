"""ext4slower: the C it builds, its kprobe programs loaded through the verifier, the one line it ends
with on a kernel without kprobes, and (where kprobes exist) each ext4 call of the test's own file work
on an ext4 file system of its own."""

from __future__ import annotations

import os

import pytest
from _blockio import EXT4_PROGRAMS
from _bpfutil import run_interrupted
from _ext4fs import PAGE, ext4_dir, file_work
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


@pytest.mark.needs_kprobes
def test_shows_each_ext4_call_of_this_process() -> None:
    with ext4_dir() as root:
        out, _ = run_interrupted(
            ["tool", "ext4slower", "-p", str(os.getpid()), "0"],
            lambda h: h == "Tracing ext4 operations\n",
            lambda: file_work(root / "rbcc-slow.dat", 3, 2),
            lambda out: out.count("rbcc-slow.dat") >= 8,
        )
    lines = out.splitlines()
    assert lines[1].split() == ["TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME"], out
    with open("/proc/self/comm") as f:
        comm = f.read().strip()[:14]
    rows = [line.split() for line in lines[2:]]
    assert all(row[1:3] == [comm, str(os.getpid())] and float(row[6]) >= 0 for row in rows), out
    # (T, BYTES, OFF_KB, FILENAME): two opens, three page writes, an fsync, two page reads
    calls = sorted((row[3], int(row[4]), int(row[5]), row[7]) for row in rows)
    kb = PAGE // 1024
    name = "rbcc-slow.dat"
    writes = [("W", PAGE, i * kb, name) for i in range(3)]
    reads = [("R", PAGE, i * kb, name) for i in range(2)]
    assert calls == sorted([("O", 0, 0, name)] * 2 + writes + [("S", 0, 0, name)] + reads), out
