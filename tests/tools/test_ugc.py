"""ugc: a collection a Python child makes (gc.collect() of garbage it made on purpose) is reported with
its generation and what it collected; -F keeps the collections whose description has the text."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from _langkids import python_child, run_on_child
from _toolcheck import text_of

from rbcc._tools.languages import LANGUAGES
from rbcc.tools import ugc

GARBAGE = 1000
# cycles only the collector frees: each list holds itself
BODY = f"""import gc
for _ in range({GARBAGE}):
    cycle = []
    cycle.append(cycle)
del cycle
gc.collect()
"""


def test_generated_c_has_each_probe_pair_and_the_minimum() -> None:
    text = text_of(ugc, "-l", "python", "-M", "5", "42")
    assert "int trace_gc__start(struct pt_regs *ctx)" in text and "int trace_gc__done(struct pt_regs *ctx)" in text
    assert "if (elapsed < 5000000)" in text and "bpf_usdt_readarg(1, ctx, &objs);" in text
    java = text_of(ugc, "-l", "java", "1")
    assert "int trace_mem__pool__gc__end(" in java and "event.probe_index = 1;" in java
    assert "int trace_gc__mark__begin(" in text_of(ugc, "-l", "ruby", "1")
    assert "bpf_usdt_readarg(1, ctx, &gc_type);" in text_of(ugc, "-l", "node", "1")


def test_descriptions() -> None:
    event = types.SimpleNamespace(field1=2, field2=1500, field3=0, field4=0, string1=b"", string2=b"")
    assert ugc.describe(LANGUAGES["python"].gcs[0], event) == "gen 2 GC collected 1500 objects"
    event.field1 = 5
    assert ugc.describe(LANGUAGES["node"].gcs[0], event) == "GC scavenge, GC incremental mark"
    java = types.SimpleNamespace(field1=10, field2=100, field3=4, field4=100, string1=b"G1 Young", string2=b"Eden")
    assert ugc.describe(LANGUAGES["java"].gcs[0], java) == "G1 Young Eden used=10->4 max=100->100"


@pytest.mark.needs_root
def test_sees_the_collection_a_child_makes(tmp_path: Path) -> None:
    child = python_child(tmp_path, BODY, profile=False)
    header = lambda h: h.startswith("Tracing garbage collections in python process")  # noqa: E731
    big = lambda out: any(int(r[-2]) >= GARBAGE for r in _rows(out))  # noqa: E731
    out = run_on_child(["tool", "ugc", "-l", "python", "-F", "gen 2", str(child.pid)], child, header, big)
    assert "START    TIME (us) DESCRIPTION" in out
    rows = _rows(out)
    assert rows and all(r[2:5] == ["gen", "2", "GC"] for r in rows), out
    assert any(int(r[-2]) >= GARBAGE and float(r[1]) > 0 for r in rows), out


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.endswith(" objects")]
