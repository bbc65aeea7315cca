"""The examples run for real and print what they should (root: they load and attach BPF programs)."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from _bpfutil import child_env

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


# -- the notebooks in a real Jupyter kernel (nbclient starts ipykernel), as root --------------------------


def _execute(nb: Any, monkeypatch: pytest.MonkeyPatch, allow_errors: bool = False) -> Any:
    """Run every cell of ``nb`` in a fresh Python kernel whose working directory is examples/ (where the
    notebooks' ``import workload`` finds it) and which imports this checkout's rbcc; the notebook, run."""
    nbclient = pytest.importorskip("nbclient", reason="nbclient (installed by make test) is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel (installed by make test) is not installed")
    pytest.importorskip("matplotlib", reason="matplotlib (rbcc[notebook], installed by make test) is not installed")
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    client = nbclient.NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()
    return nb


def _notebook(name: str) -> Any:
    nbformat = pytest.importorskip("nbformat", reason="nbformat (installed by make test) is not installed")
    return nbformat.read(EXAMPLES / name, as_version=4)


def _mime_types(cell: Any) -> set[str]:
    return {mime for out in cell.outputs for mime in out.get("data", {})}


@needs_root
def test_the_profile_notebook_draws_a_flame_graph_a_heatmap_and_histograms(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _execute(_notebook("profile_and_heatmap.ipynb"), monkeypatch)
    cells = {c.source.splitlines()[0]: c for c in nb.cells if c.cell_type == "code"}
    flame = cells[
        'rbcc.flamegraph(b["counts"], stack_traces=b["stack_traces"], title="CPU: the workload", count_name="samples")'
    ]
    assert "image/svg+xml" in _mime_types(flame)
    svg = flame.outputs[0]["data"]["image/svg+xml"]
    ET.fromstring(svg)  # a well-formed SVG
    assert "demo_compress" in svg and "demo_checksum" in svg and "read_zero" in svg  # user and kernel frames
    assert "image/png" in _mime_types(cells["heatmap"])
    assert "read() latency" in _text(cells["heatmap"])
    assert "image/png" in _mime_types(cells['b["latency"].to_histogram("usecs")'])
    live = cells['live(b["latency"], interval=1, val_type="usecs", count=3, clear=True)']
    # one display, redrawn in place: nbclient applies each update to it
    assert [o.output_type for o in live.outputs] == ["display_data"] and "image/png" in _mime_types(live)


def _text(cell: Any) -> str:
    return "".join(out.get("data", {}).get("text/plain", "") for out in cell.outputs)


@needs_root
def test_the_syscall_notebook_s_histogram_is_a_picture_in_jupyter(monkeypatch: pytest.MonkeyPatch) -> None:
    nb = _execute(_notebook("syscall_latency.ipynb"), monkeypatch)
    hist = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("hist = "))
    assert "image/png" in _mime_types(hist) and "usecs" in _text(hist)


@needs_root
def test_a_compile_error_in_a_bpf_cell_points_at_the_cell_s_line(monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat (installed by make test) is not installed")
    cells = [
        "%load_ext rbcc",
        "%%bpf b\nBPF_HISTOGRAM(dist);\nint f(void *ctx) {\n    return nope;\n}\n",
        "'b' in globals()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    _execute(nb, monkeypatch, allow_errors=True)
    (error,) = nb.cells[1].outputs
    assert error.output_type == "error" and error.ename == "CompileError"
    # line 4 of the cell, counting the %%bpf line as Jupyter does; "nope" starts at column 12
    assert error.evalue.startswith("cell line 4, column 12: error: use of undeclared identifier 'nope'"), error.evalue
    assert nb.cells[2].outputs[0]["data"]["text/plain"] == "False"
