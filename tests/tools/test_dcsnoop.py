"""dcsnoop: its kprobe programs through the verifier, the one line it ends with on a kernel without
kprobes, and (where kprobes exist) the test's own failed lookup of a new name, and with -a its lookup
of a name that exists, each with the test's pid and comm."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from _bpfutil import own_comm, run_interrupted
from _toolcheck import assert_kprobes_load, refusal_line, run_rbcc, text_of

from rbcc.tools import dcsnoop


def test_program_reads_the_names() -> None:
    text = text_of(dcsnoop)
    assert "nd->last.name" in text and "PT_REGS_RC(ctx) == 0" in text


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(dcsnoop), ("trace_fast", "trace_d_lookup", "trace_d_lookup_return"))


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "dcsnoop", "-a")
    assert line.startswith("dcsnoop: needs kprobes on d_lookup and lookup_fast") and "CONFIG_KPROBES" in line


def test_ebpf_prints_the_program() -> None:
    done = run_rbcc("tool", "dcsnoop", "--ebpf")
    assert done.returncode == 0 and "int trace_d_lookup_return(struct pt_regs *ctx)" in done.stdout, done.stderr


def _rows(out: str, name: str) -> set[str]:
    """The T column of the lines about ``name`` by this process: a reference shows the rest of the path
    from the component looked up (as bcc), a miss the component."""
    kinds = set()
    for r in (line.split() for line in out.splitlines()):
        if len(r) == 5 and r[4].split("/")[0] == name and re.match(r"\d+\.\d{6}$", r[0]):
            assert r[1:3] == [str(os.getpid()), own_comm().decode()], r
            kinds.add(r[3])
    return kinds


@pytest.mark.needs_kprobes
def test_shows_the_tests_failed_lookup_and_with_all_its_references() -> None:
    missing, present = f"rbcc-dcm-{os.getpid()}", f"rbcc-dcp-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, present))

        def work() -> None:
            # a new name: open(O_CREAT) looks it up in the dcache first, and finds nothing
            os.close(os.open(os.path.join(tmp, missing), os.O_CREAT | os.O_WRONLY))
            os.stat(os.path.join(tmp, present, "."))

        out, _ = run_interrupted(
            ["tool", "dcsnoop", "-a"],
            lambda h: re.match(r"TIME\(s\)\s+PID\s+COMM\s+T\s+FILE", h) is not None,
            work,
            lambda out: "M" in _rows(out, missing) and "R" in _rows(out, present),
            timeout=30,
        )
    assert "M" in _rows(out, missing), out
    assert "R" in _rows(out, present), out
