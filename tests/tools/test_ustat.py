"""ustat: a Python child's method calls and collections per second in its own row of the table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _langkids import PROFILE_ON, usdt_python
from _toolcheck import run_rbcc, text_of

from rbcc.tools import ustat

LOOP = """import gc, time
def rbcc_busy():
    return 1
while True:
    for _ in range(500):
        rbcc_busy()
    gc.collect()
    time.sleep(0.05)
"""


def test_generated_c_counts_each_probe_per_process() -> None:
    python = text_of(ustat, "-l", "python")
    assert "int python_function__entry(void *ctx)" in python and "int python_gc__start(void *ctx)" in python
    assert "python_gc__start_counts.increment(tgid);" in python and "java_" not in python
    every = text_of(ustat)
    for lang in ("java", "node", "perl", "php", "python", "ruby", "tcl"):
        assert f"int {lang}_" in every
    assert "int java_ExceptionOccurred__entry(void *ctx)" in every


@pytest.mark.needs_root
def test_shows_a_childs_calls_and_gcs_in_its_row(tmp_path: Path) -> None:
    script = tmp_path / "busy.py"
    script.write_text(PROFILE_ON + LOOP)
    child = subprocess.Popen([usdt_python(), str(script)])
    try:
        done = run_rbcc("tool", "ustat", "-l", "python", "-C", "1", "3", timeout=120)
    finally:
        child.kill()
        child.wait()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Tracing... Output every 1 secs. Hit Ctrl-C to end" and lines[-1] == "Detaching..."
    header = "PID    CMDLINE              METHOD/s   GC/s   OBJNEW/s   CLOAD/s  EXC/s  THR/s"
    assert sum(line.rstrip() == header for line in lines) == 3, done.stdout
    rows = [line.split() for line in lines if line.split()[:1] == [str(child.pid)]]
    assert len(rows) == 3, done.stdout
    # the first interval may have begun before the probes were in: the later ones see the loop
    method, gc = int(rows[-1][-6]), int(rows[-1][-5])
    assert method >= 500 and gc >= 1, done.stdout
    assert all(int(r[-1]) == 0 and int(r[-4]) == 0 for r in rows)  # no threads, no allocation probes
