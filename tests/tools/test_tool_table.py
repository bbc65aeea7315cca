"""The README's tool table against the tools: every tool of ``rbcc tool`` has one row naming the source it
uses on this kernel and on a stock one, no row names a tool that is not there, every tool of bcc
(Debian's bpfcc-tools) and the libbpf-tools-only ones are rbcc tools or have a row saying why not,
and every tool has a test file with a live test (or is a thin entry over one that has)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from rbcc import tools

CHECKOUT = Path(__file__).resolve().parents[2]
README = CHECKOUT / "README.md"
TESTS = CHECKOUT / "tests" / "tools"
BCC_TOOLS = Path("/usr/sbin")

# libbpf-tools' tools that bcc's Python set lacks (issue 19 names them)
LIBBPF_ONLY = ("biostacks", "cpufreq", "futexctn", "fsdist", "fsslower", "numamove", "sigsnoop", "softirqslower")
LIBBPF_ONLY += ("tcppktlat", "filegone", "wqlat", "bpftop")


def _rows(heading: str) -> dict[str, list[str]]:
    text = README.read_text()
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    rows = {}
    for line in text[start : end if end >= 0 else len(text)].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or set(cells[0]) <= set("-: ") or cells[0] == "tool":
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{name} has two rows"
        rows[name] = cells[1:]
    return rows


def tool_rows() -> dict[str, list[str]]:
    return _rows("### Every tool and its source")


def missing_rows() -> dict[str, list[str]]:
    return _rows("### bcc tools rbcc does not have")


def test_every_tool_has_one_row_with_both_sources() -> None:
    rows = tool_rows()
    assert sorted(rows) == tools.names(), set(rows) ^ set(tools.names())
    for name, sources in rows.items():
        assert len(sources) == 2 and all(sources), f"{name}: say the source on this kernel and on a stock kernel"


def test_every_bcc_and_libbpf_only_tool_is_a_tool_or_says_why_not() -> None:
    if not BCC_TOOLS.joinpath("execsnoop-bpfcc").exists():
        pytest.skip("bcc's tools (Debian's bpfcc-tools) are not installed: nothing to compare with")
    bcc = {p.name.removesuffix("-bpfcc").replace("-", "_") for p in BCC_TOOLS.glob("*-bpfcc")}
    ours = set(tools.names())
    missing = missing_rows()
    for name in sorted(bcc | set(LIBBPF_ONLY)):
        assert (name in ours) != (name in missing), f"{name}: a tool, or a row in 'bcc tools rbcc does not have'"
    for name, (why, *_) in missing.items():
        assert len(why) > 20, f"{name}: say why"


def _thin_entry_of(name: str) -> str | None:
    """The tool a thin entry runs (its module imports that tool's main), if it is one."""
    tree = ast.parse((CHECKOUT / "tools" / f"{name}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rbcc.tools":
            return node.names[0].name
    return None


def test_every_tool_has_a_live_test() -> None:
    for name in tools.names():
        target = name if (TESTS / f"test_{name}.py").exists() else _thin_entry_of(name)
        assert target is not None, f"{name}: no tests/tools/test_{name}.py"
        text = (TESTS / f"test_{target}.py").read_text()
        assert re.search(r"@pytest\.mark\.(needs_root|needs_kprobes|needs_fentry)", text), f"{name}: no live test"
