"""fsdist and bcc's per-file-system dist tools (btrfsdist, nfsdist, xfsdist): the C and functions for
each file system, the programs through the verifier, the one line they end with on a kernel without
kprobes, and (where kprobes exist) fsdist -t ext4 counting the test's own ext4 calls."""

from __future__ import annotations

import os
import re

import pytest
from _blockio import EXT4_PROGRAMS
from _bpfutil import run_interrupted
from _ext4fs import ext4_dir, file_work
from _toolcheck import assert_kprobes_load, refusal_line, run_rbcc, text_of

from rbcc._tools import fsops
from rbcc.tools import btrfsdist, fsdist, nfsdist, xfsdist


def test_getattr_only_where_the_file_system_has_its_own() -> None:
    assert "trace_getattr_return" in text_of(fsdist, "-t", "ext4")
    assert "trace_getattr_return" in text_of(fsdist, "-t", "nfs")
    assert "trace_getattr_return" not in text_of(fsdist, "-t", "xfs")
    assert "trace_getattr_return" not in text_of(fsdist, "-t", "btrfs")
    assert "/ 1000000;" in text_of(fsdist, "-t", "xfs", "-m")
    assert "if (pid != 7)" in text_of(fsdist, "-t", "xfs", "-p", "7")
    # bcc's names: its options (-T is "no timestamp" there), its file system, nfsdist with getattr
    assert "trace_getattr_return" in text_of(nfsdist) and "trace_getattr_return" not in text_of(xfsdist)
    assert btrfsdist.build_parser().parse_args(["-T", "1"]).notimestamp


def test_a_file_system_must_be_named() -> None:
    with pytest.raises(SystemExit) as e:
        fsdist.build_parser().parse_args([])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        fsdist.build_parser().parse_args(["-t", "vfat"])


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(fsdist, "-t", "ext4"), ("trace_entry", "trace_getattr_entry", *EXT4_PROGRAMS))


@pytest.mark.without_kprobes
@pytest.mark.parametrize("argv", [("fsdist", "-t", "xfs"), ("xfsdist",), ("btrfsdist",), ("nfsdist",)])
def test_without_kprobes_it_says_so_in_one_line(argv: tuple[str, ...]) -> None:
    fs = "xfs" if argv[0] == "fsdist" else argv[0][: -len("dist")]
    line = refusal_line("tool", *argv)
    assert line.startswith(f"{argv[0]}: needs kprobes on {fsops.FS_FUNCS[fs]['read']}"), line
    assert "CONFIG_KPROBES" in line and "rbcc tool biolatency" in line


def test_ebpf_prints_the_program() -> None:
    done = run_rbcc("tool", "xfsdist", "--ebpf")
    assert done.returncode == 0 and "int trace_fsync_return(struct pt_regs *ctx)" in done.stdout, done.stderr


def _counts(out: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    op = None
    for line in out.splitlines():
        if m := re.match(r"operation = '(\w+)'$", line):
            op = m.group(1)
            counts.setdefault(op, 0)
        elif op and (m := re.match(r"\s*\d+ -> \d+\s*: (\d+)\s*\|", line)):
            counts[op] += int(m.group(1))
    return counts


@pytest.mark.needs_kprobes
def test_fsdist_counts_this_process_ext4_calls() -> None:
    with ext4_dir() as root:

        def work() -> None:
            file_work(root / "rbcc-fsdist.dat", 5, 3)
            os.stat(root / "rbcc-fsdist.dat")  # ext4_file_getattr

        out, _ = run_interrupted(
            ["tool", "fsdist", "-t", "ext4", "-p", str(os.getpid())],
            lambda h: h.startswith("Tracing ext4 operation latency"),
            work,
        )
    assert "usecs" in out, out
    assert _counts(out) == {"open": 2, "write": 5, "fsync": 1, "read": 3, "getattr": 1}, out
