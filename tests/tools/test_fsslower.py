"""fsslower and bcc's per-file-system slower tools (btrfsslower, nfsslower, xfsslower): the C, the
programs through the verifier, the one line they end with on a kernel without kprobes, and (where
kprobes exist) fsslower -t ext4 showing each of the test's own ext4 calls."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from _blockio import EXT4_PROGRAMS
from _bpfutil import own_comm, run_interrupted
from _ext4fs import ext4_dir, file_work
from _toolcheck import assert_kprobes_load, refusal_line, text_of

from rbcc._tools import fsops
from rbcc.tools import fsslower, nfsslower, xfsslower


def test_threshold_and_filter_in_the_program() -> None:
    assert "delta_us <= 10000" in text_of(fsslower, "-t", "ext4")
    assert "if (0)" in text_of(fsslower, "-t", "ext4", "-m", "0")
    assert "if (pid != 9)" in text_of(fsslower, "-t", "nfs", "-p", "9")
    assert "delta_us <= 1000" in text_of(xfsslower, "1") and "if (pid != 9)" in text_of(nfsslower, "-p", "9")


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(fsslower, "-t", "ext4"), ("trace_rw_entry", *EXT4_PROGRAMS))


@pytest.mark.without_kprobes
@pytest.mark.parametrize("argv", [("fsslower", "-t", "nfs"), ("xfsslower",), ("btrfsslower",), ("nfsslower",)])
def test_without_kprobes_it_says_so_in_one_line(argv: tuple[str, ...]) -> None:
    fs = "nfs" if argv[0] == "fsslower" else argv[0][: -len("slower")]
    line = refusal_line("tool", *argv)
    assert line.startswith(f"{argv[0]}: needs kprobes on {fsops.FS_FUNCS[fs]['read']}"), line
    assert "CONFIG_KPROBES" in line and "rbcc tool fileslower" in line


@pytest.mark.needs_kprobes
def test_fsslower_shows_each_ext4_call_of_this_process() -> None:
    name = "rbcc-fsslower.dat"
    with ext4_dir() as root:
        out, _ = run_interrupted(
            ["tool", "fsslower", "-t", "ext4", "-m", "0", "-p", str(os.getpid())],
            lambda h: h.startswith("Tracing ext4 operations... Hit Ctrl-C to end."),
            lambda: file_work(root / name, 5, 3),
            lambda out: out.count(name) >= 11,
        )
    rows = [line.split() for line in out.splitlines() if line.endswith(" " + name)]
    assert all(r[1] == own_comm().decode() and r[2] == str(os.getpid()) for r in rows), out
    assert Counter(r[3] for r in rows) == {"O": 2, "W": 5, "F": 1, "R": 3}, out
    assert {r[4] for r in rows if r[3] in "RW"} == {str(os.sysconf("SC_PAGE_SIZE"))}, out
