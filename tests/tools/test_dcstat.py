"""dcstat: its kprobe programs through the verifier, the one line it ends with on a kernel without
kprobes, and (where kprobes exist) the misses of the test's own mkdirs of new names counted."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from _bpfutil import run_interrupted
from _toolcheck import assert_kprobes_load, refusal_line, run_rbcc, text_of

from rbcc.tools import dcstat

NEW_NAMES = 500


def test_program_counts_refs_slow_and_misses() -> None:
    text = text_of(dcstat)
    assert "stats.atomic_increment(S_REFS);" in text and "PT_REGS_RC(ctx) == 0" in text
    assert re.match(dcstat.FAST_RE, "lookup_fast.constprop.0") and not re.match(dcstat.FAST_RE, "lookup_fastx")


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(dcstat), ("count_fast", "count_lookup"))


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "dcstat", "1", "1")
    assert line.startswith("dcstat: needs kprobes on lookup_fast and d_lookup") and "CONFIG_KPROBES" in line
    assert "rbcc tool vfsstat" in line


def test_ebpf_prints_the_program() -> None:
    done = run_rbcc("tool", "dcstat", "--ebpf")
    assert done.returncode == 0 and "int count_lookup(struct pt_regs *ctx)" in done.stdout, done.stderr


def _totals(out: str, interval: int) -> list[int]:
    rows = [line.split()[1:4] for line in out.splitlines() if re.match(r"^\d\d:\d\d:\d\d: ", line)]
    return [sum(int(r[i]) * interval for r in rows) for i in range(3)]


@pytest.mark.needs_kprobes
def test_counts_the_misses_of_the_tests_new_names() -> None:
    with tempfile.TemporaryDirectory() as tmp:

        def work() -> None:
            # a name the directory never had: d_lookup finds nothing (a miss) before mkdir makes it
            for i in range(NEW_NAMES):
                os.mkdir(os.path.join(tmp, f"rbcc-dc-{i}"))

        out, _ = run_interrupted(
            ["tool", "dcstat", "1"],
            lambda h: re.match(r"TIME\s+REFS/s\s+SLOW/s\s+MISS/s\s+HIT%", h) is not None,
            work,
            lambda out: _totals(out, 1)[2] >= NEW_NAMES,
            timeout=30,
        )
    refs, slow, miss = _totals(out, 1)
    assert miss >= NEW_NAMES and slow >= miss and refs >= NEW_NAMES, out
