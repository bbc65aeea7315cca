"""uflow: the entries and returns of a Python child's own nested functions, in order and indented by
depth, kept by the class (for Python: file) and method filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from _langkids import python_child, run_on_child
from _toolcheck import text_of

from rbcc.tools import uflow

# pinned to one CPU, so its events come through one perf buffer in the order they happened
BODY = """import os
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
def rbcc_inner():
    return 1
def rbcc_middle():
    return rbcc_inner() + 1
def rbcc_outer():
    return rbcc_middle() + 1
rbcc_outer()
"""


def test_generated_c_has_a_function_per_probe_and_the_filters() -> None:
    text = text_of(uflow, "-l", "python", "-M", "rbcc_", "-C", "/tmp/x", "42")
    assert "int python_entry(struct pt_regs *ctx)" in text and "int python_return(struct pt_regs *ctx)" in text
    assert 'char expected[] = "rbcc_";' in text and 'char expected[] = "/tmp/x";' in text
    assert "prefix_class(data.clazz)" in text and "prefix_method(data.method)" in text
    plain = text_of(uflow, "-l", "python", "42")
    assert "prefix_" not in plain and "bpf_usdt_readarg(1, ctx, &clazz)" in plain
    # Ruby's C methods are followed too; Tcl's entry is proc__args, its class unnamed
    assert [p for p, _, _ in uflow.probes("ruby")] == [
        "method__entry",
        "method__return",
        "cmethod__entry",
        "cmethod__return",
    ]
    assert uflow.probes("tcl")[0] == ("proc__args", "tcl_entry", False)
    assert "&clazz)" not in text_of(uflow, "-l", "tcl", "1")
    assert "bpf_usdt_readarg(4, ctx, &method)" in text_of(uflow, "-l", "java", "1")


def _method_column(line: str) -> str:
    """The METHOD column with its indentation: past the TIME column, "%-8.3f " wide."""
    time = line.split()[3]
    at = line.index(" " + time + " ") + 1
    return line[at + max(8, len(time)) + 1 :]


@pytest.mark.needs_root
def test_shows_a_childs_nested_calls_in_order(tmp_path: Path) -> None:
    child = python_child(tmp_path, BODY)
    script = str(tmp_path / "child.py")
    header = lambda h: h.startswith("Tracing method calls in python process")  # noqa: E731
    returned = lambda out: f"<- {script}.rbcc_outer" in out  # noqa: E731
    # -M: the child's profile function (a lambda, whose returns the probes see) is left out
    argv = ["tool", "uflow", "-l", "python", "-C", script, "-M", "rbcc_", str(child.pid)]
    out = run_on_child(argv, child, header, returned)
    rows = [line.split(None, 4) for line in out.splitlines() if script in line]
    assert all(r[1] == str(child.pid) and r[2] == str(child.pid) for r in rows), out
    flow = [_method_column(line) for line in out.splitlines() if script in line]
    assert flow == [
        f"-> {script}.rbcc_outer",
        f"  -> {script}.rbcc_middle",
        f"    -> {script}.rbcc_inner",
        f"    <- {script}.rbcc_inner",
        f"  <- {script}.rbcc_middle",
        f"<- {script}.rbcc_outer",
    ], out
