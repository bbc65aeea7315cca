"""``%load_ext rbcc`` and its ``%%bpf NAME`` cell magic (rbcc._pictures.magic), in an IPython shell in
this process: compile errors at the cell's own lines, the object bound to its name, the old one cleaned
up when the cell runs again. (tests/python/test_examples.py runs it in a real Jupyter kernel too.)"""

from __future__ import annotations

import os
from typing import Any

import pytest

from rbcc._pictures.magic import cell_error
from rbcc.errors import CompileError

pytest.importorskip("IPython", reason="IPython (ipykernel, installed by make test) is not installed")

GOOD_CELL = """%%bpf b
BPF_HISTOGRAM(dist);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    dist.increment(bpf_log2l(5));
    return 0;
}
"""
# line 4 of the cell (the %%bpf line is its line 1) uses an undeclared name at column 30
BAD_CELL = GOOD_CELL.replace("bpf_log2l(5)", "bpf_log2l(x)")


def test_an_error_is_told_at_the_cell_s_line_with_a_caret() -> None:
    source = "\nint f(void *ctx) {\n\treturn y;\n}\n"
    error = CompileError(
        "<bpf text>:3:9: error: ...", [("<bpf text>", 3, 9, "error", "use of undeclared identifier 'y'")]
    )
    told = cell_error(error, source)
    assert str(told).splitlines() == [
        "cell line 3, column 9: error: use of undeclared identifier 'y'",
        "            return y;",
        "            ^",
    ]
    assert told.diagnostics[0][:3] == ("<cell>", 3, 9)
    # an error no line is to blame for stays as it was
    plain = CompileError("no such tracepoint")
    assert cell_error(plain, source) is plain


@pytest.fixture
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    ipython = InteractiveShell.instance()
    ipython.run_line_magic("load_ext", "rbcc")
    yield ipython
    old = ipython.user_ns.pop("b", None)
    if old is not None:
        old.cleanup()


def test_the_magic_refuses_a_line_without_a_name(shell: Any) -> None:
    from IPython.core.error import UsageError

    for line in ("", "1b", "b extra"):
        result = shell.run_cell(f"%%bpf {line}\nint x;\n")
        assert isinstance(result.error_in_exec, UsageError), (line, result.error_in_exec)


@pytest.mark.needs_root
def test_a_compile_error_points_at_the_cell_s_line(shell: Any) -> None:
    result = shell.run_cell(BAD_CELL)
    error = result.error_in_exec
    assert isinstance(error, CompileError)
    assert str(error).startswith("cell line 4, column 30: error: use of undeclared identifier 'x'"), str(error)
    assert [(d.file, d.line, d.column) for d in error.diagnostics] == [("<cell>", 4, 30)]
    assert "b" not in shell.user_ns


@pytest.mark.needs_root
def test_the_cell_binds_a_bpf_object_and_a_rerun_replaces_it(shell: Any) -> None:
    assert shell.run_cell(GOOD_CELL).success
    first = shell.user_ns["b"]
    os.getppid()
    assert int(first["dist"].to_histogram().counts[3]) >= 1
    assert shell.run_cell(GOOD_CELL).success
    assert shell.user_ns["b"] is not first and first._obj is None  # the old one cleaned up
