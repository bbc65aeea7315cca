"""The examples run for real and print what they should (root: they load and attach BPF programs)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def run(name: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@needs_root
def test_bitehist_prints_a_histogram_of_its_own_io() -> None:
    out = run("bitehist.py", "1")
    assert "Tracing block I/O" in out
    assert "     kbytes              : count     distribution" in out
    rows = [line for line in out.splitlines() if "->" in line]
    counts = [int(line.split(":")[1].split("|")[0]) for line in rows]
    assert sum(counts) > 0, out


@needs_root
def test_hello_world_sees_the_exec_it_starts() -> None:
    out = run("hello_world.py", "1")
    assert "Hello, World! exec of pid" in out
    assert any(" true " in line for line in out.splitlines()), out


@needs_root
def test_the_notebook_runs_cell_by_cell_and_sees_its_own_reads() -> None:
    pytest.importorskip("pandas", reason="pandas (rbcc[notebook], installed by make test) is not installed")
    pytest.importorskip("matplotlib", reason="matplotlib (rbcc[notebook], installed by make test) is not installed")
    import ast
    import json

    cells = json.loads((EXAMPLES / "syscall_latency.ipynb").read_text())["cells"]
    # as Jupyter runs it: every cell in one namespace, a cell's last expression kept as its result
    scope: dict = {}
    results = []
    for cell in (c for c in cells if c["cell_type"] == "code"):
        tree = ast.parse("".join(cell["source"]))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "cell", "exec"), scope)
        if last is not None:
            results.append(eval(compile(ast.Expression(last.value), "cell", "eval"), scope))
    count, names = results[0]
    assert count >= 200 and names == ("pid", "fd", "bytes", "ns", "comm")
    hist = results[1]
    assert int(hist.counts.sum()) >= 200 and hist._repr_png_().startswith(b"\x89PNG")
    slowest, totals = results[2], results[3]
    assert len(slowest) == 10 and list(slowest["us"]) == sorted(slowest["us"], reverse=True)
    assert os.getpid() in set(totals["pid"]) and (totals["ns"] > 0).all()
