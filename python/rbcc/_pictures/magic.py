"""``%load_ext rbcc``: the ``%%bpf NAME`` cell magic, which compiles the cell's C into a ``BPF`` object
bound to ``NAME`` in the notebook, with compile errors at the cell's own lines (the ``%%bpf`` line is the
cell's line 1, as Jupyter numbers it).

Running the cell again cleans up the object ``NAME`` held before (its probes detached), so a cell
edited and rerun does not leave its old probes counting."""

from __future__ import annotations

import argparse
import shlex
from typing import Any, NoReturn

from IPython.core.error import UsageError

from .._bpf import BPF
from ..errors import CompileError

__all__ = ["cell_error", "compile_cell", "load_ipython_extension", "run_bpf_magic"]

# the name rbcc gives a program passed as text= (what its diagnostics' file is)
TEXT_FILE = "<bpf text>"
CELL_FILE = "<cell>"


class _Parser(argparse.ArgumentParser):
    """The magic line's options; a mistake is IPython's UsageError (one line), not an exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.format_usage().strip()}\n%%bpf: {message}")


def _parser() -> _Parser:
    p = _Parser(
        prog="%%bpf",
        add_help=False,
        description="Compile the cell's BPF C into a BPF object; flags for clang (-DNAME=1) may follow the name.",
    )
    p.add_argument("name", help="the notebook variable the BPF object is bound to")
    p.add_argument("-c", "--cflag", dest="cflags", action="append", default=[], help="a flag for clang; repeat")
    p.add_argument("--debug", type=int, default=0, help="BPF(debug=...): 8 prints the C compiled")
    return p


def _where(line: int, column: int | None) -> str:
    return f"cell line {line}" + (f", column {column}" if column else "")


def cell_error(error: CompileError, source: str) -> CompileError:
    """``error`` of the program ``source`` (the cell's text with its magic line blanked, so that line
    numbers are the cell's) told at the cell's lines: each diagnostic, its line of the cell and a caret
    under its column. An error no line is to blame for stays as it was."""
    ours = [d for d in error.diagnostics if d.file == TEXT_FILE]
    if not ours:
        return error
    lines = source.splitlines()
    message = []
    for d in ours:
        message.append(f"{_where(d.line, d.column)}: {d.severity}: {d.message}")
        if 0 < d.line <= len(lines):
            text = lines[d.line - 1].expandtabs()
            message.append(f"    {text}")
            if d.column:
                message.append("    " + " " * (d.column - 1) + "^")
    diagnostics = [(CELL_FILE, d.line, d.column, d.severity, d.message) for d in ours]
    return CompileError("\n".join(message), diagnostics)


def compile_cell(cell: str, cflags: list[str] | None = None, debug: int = 0) -> BPF:
    """The cell's C as a loaded and attached ``BPF``; a CompileError at the cell's lines."""
    __tracebackhide__ = True  # noqa: F841
    # a blank first line stands for the %%bpf line, so the C's line numbers are the cell's
    source = "\n" + cell
    flags: list[str | bytes] = list(cflags or [])
    try:
        return BPF(text=source, cflags=flags, debug=debug)
    except CompileError as e:
        raise cell_error(e, source) from None


def run_bpf_magic(namespace: dict[str, Any], line: str, cell: str) -> BPF:
    """``%%bpf NAME [-c CFLAG]... [--debug N]``: compile ``cell`` into a BPF object bound to ``NAME``
    in ``namespace``, after cleaning up the BPF object the name held before."""
    __tracebackhide__ = True  # noqa: F841 (IPython leaves frames that say so out of tracebacks)
    parser = _parser()
    args, rest = parser.parse_known_args(shlex.split(line))
    # clang's flags may also stand on the line as they are: %%bpf b -DPID=1 -I/opt/inc
    extra = [word for word in rest if word.startswith("-")]
    if len(extra) < len(rest):
        parser.error(f"unrecognized arguments: {' '.join(w for w in rest if not w.startswith('-'))}")
    args.cflags += extra
    if not args.name.isidentifier():
        raise UsageError(f"%%bpf NAME: {args.name!r} is not a Python name")
    old = namespace.pop(args.name, None)
    if isinstance(old, BPF):
        old.cleanup()
    b = compile_cell(cell, args.cflags, args.debug)
    namespace[args.name] = b
    return b


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%bpf`` with the IPython shell ``ipython``."""

    def bpf(line: str, cell: str) -> None:
        __tracebackhide__ = True  # noqa: F841
        run_bpf_magic(ipython.user_ns, line, cell)

    bpf.__doc__ = _parser().format_help() + "\nA compile error is shown at the cell's own lines."
    ipython.register_magic_function(bpf, magic_kind="cell", magic_name="bpf")
