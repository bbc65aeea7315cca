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
