"""uobjnew: the malloc() blocks of a C program of the test's own (-l c), counted by size exactly; the
USDT languages' C and the -C/-S selections."""

from __future__ import annotations

import argparse
import subprocess
import types
from pathlib import Path

import pytest
from _bpfutil import build_c_program, run_interrupted
from _toolcheck import text_of

from rbcc.tools import uobjnew

# sizes nothing else in the program allocates, each a known number of times, after a line on stdin
MALLOCS_C = r"""
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char line[16];
    void *volatile keep;
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 0; i < 7; i++) {
        keep = malloc(12345);
        free(keep);
    }
    for (int i = 0; i < 3; i++) {
        keep = malloc(54321);
        free(keep);
    }
    return 0;
}
"""


def test_generated_c_per_language() -> None:
    c = text_of(uobjnew, "-l", "c", "42")
    assert "#if 1" in c and "u64 size = PT_REGS_PARM1(ctx);" in c and "bpf_usdt_readarg" not in c
    java = text_of(uobjnew, "-l", "java", "42")
    assert "#if 0" in java and "bpf_usdt_readarg(3, ctx, &len);" in java and "bpf_usdt_readarg(4, ctx, &size);" in java
    ruby = text_of(uobjnew, "-l", "ruby", "42")
    assert ruby.count("int alloc_entry_") == 4 and '.name = "string"' in ruby
    tcl = text_of(uobjnew, "-l", "tcl", "42")
    assert '.name = "<ALL>"' in tcl and "bpf_usdt_readarg" not in tcl
    assert [p for p, _ in uobjnew.functions("ruby")] == [
        "object__create",
        "string__create",
        "hash__create",
        "array__create",
    ]


def test_top_count_and_top_size_select_rows() -> None:
    rows = [
        (k, types.SimpleNamespace(num_allocs=n, total_size=s))
        for k, n, s in [("a", 9, 10), ("b", 1, 500), ("c", 5, 50)]
    ]
    pick = lambda *argv: [k for k, _ in uobjnew.select(rows, uobjnew.build_parser().parse_args([*argv, "1"]))]  # noqa: E731
    assert pick() == ["a", "c", "b"]
    assert pick("-C", "2") == ["c", "a"]
    assert pick("-S", "1") == ["b"]
    assert isinstance(uobjnew.build_parser().parse_args(["1"]), argparse.Namespace)


@pytest.mark.needs_root
def test_counts_a_c_programs_mallocs_by_size(tmp_path: Path) -> None:
    program = build_c_program(tmp_path, "mallocs", MALLOCS_C, "-O0")
    child = subprocess.Popen([str(program)], stdin=subprocess.PIPE)

    def go() -> None:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()

    header = lambda h: h.startswith(f"Tracing allocations in process {child.pid} (language: c)")  # noqa: E731
    try:
        out, _ = run_interrupted(
            ["tool", "uobjnew", "-l", "c", str(child.pid)], header, go, lambda out: child.poll() is not None
        )
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    assert "NAME/TYPE                      # ALLOCS      # BYTES" in out
    rows = {line[:30].strip(): line[30:].split() for line in out.splitlines() if line.startswith("block size")}
    assert rows["block size 12345"] == ["7", str(7 * 12345)], out
    assert rows["block size 54321"] == ["3", str(3 * 54321)], out
