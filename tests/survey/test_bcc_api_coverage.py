"""The README's "bcc API coverage" table against bcc's names (tests/survey/bcc_api.py, read from Debian's
bcc): every name in exactly one row, no row naming what bcc lacks, the summary's counts right; and against
rbcc: what the table marks same, stricter or n.a. is there (class and module names here, instance
attributes on real objects as root), what it marks refused raises ``UnsupportedError``."""

from __future__ import annotations

import ctypes
import importlib
import inspect
import os
import re
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from bcc_api import DEBIAN_BCC, Name, bcc_names

README = Path(__file__).resolve().parents[2] / "README.md"
STATUSES = ("same", "stricter", "refused", "n.a.", "later")
SUMMARY = re.compile(r"(\d+) names: (\d+) same, (\d+) stricter, (\d+) refused,\s+(\d+) n\.a\., (\d+) later")


class Row:
    def __init__(self, module: str, names: list[str], status: str) -> None:
        self.module, self.names, self.status = module, names, status


def _section() -> str:
    text = README.read_text()
    start = text.index("## bcc API coverage")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _rows() -> list[Row]:
    rows = []
    for line in _section().splitlines():
        if not line.startswith("| `bcc"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"a row of four cells (bcc, names, rbcc, notes): {line}"
        module, names, status = cells[0].strip("`"), re.findall(r"`([^`]+)`", cells[1]), cells[2]
        assert status in STATUSES, f"{status!r} is not one of {STATUSES}: {line}"
        rows.append(Row(module, names, status))
    return rows


def _survey() -> list[Name]:
    if not (DEBIAN_BCC / "__init__.py").exists():
        pytest.skip("Debian's bcc (python3-bpfcc) is not installed: its names cannot be listed")
    return bcc_names()


def _statuses() -> dict[tuple[str, str], str]:
    """The status of each of bcc's names: an explicit entry wins over a pattern (``X.*``, ``BPF_MAP_TYPE_*``)."""
    names = _survey()
    explicit: dict[tuple[str, str], list[str]] = {}
    patterns: list[tuple[str, str, str]] = []
    for row in _rows():
        for entry in row.names:
            if "*" in entry:
                patterns.append((row.module, entry, row.status))
            else:
                explicit.setdefault((row.module, entry), []).append(row.status)
    known = {(n.module, n.name) for n in names}
    stale = sorted(f"{m} {e}" for m, e in explicit if (m, e) not in known)
    assert not stale, f"the table names what bcc does not have: {stale}"
    twice = sorted(f"{m} {e}" for (m, e), statuses in explicit.items() if len(statuses) > 1)
    assert not twice, f"names in more than one row: {twice}"
    for module, pattern, _ in patterns:
        assert any(n.module == module and fnmatchcase(n.name, pattern) for n in names), f"{module} {pattern}"
    result: dict[tuple[str, str], str] = {}
    missing = []
    for n in names:
        if (n.module, n.name) in explicit:
            result[(n.module, n.name)] = explicit[(n.module, n.name)][0]
            continue
        matched = [s for m, p, s in patterns if m == n.module and fnmatchcase(n.name, p)]
        if len(matched) != 1:
            missing.append(f"{n.module} {n.name} ({len(matched)} patterns match)")
            continue
        result[(n.module, n.name)] = matched[0]
    assert not missing, f"bcc's names the table does not place in exactly one row: {missing}"
    return result


def test_every_bcc_name_is_in_one_row_and_the_summary_counts_them() -> None:
    statuses = _statuses()
    counts = Counter(statuses.values())
    found = SUMMARY.search(_section())
    assert found is not None, "the section's summary line: 'N names: a same, b stricter, ...'"
    stated = [int(g) for g in found.groups()]
    actual = [len(statuses)] + [counts[s] for s in STATUSES]
    assert stated == actual, f"the summary says {stated}; the table holds {actual}"


def _rbcc_module(module: str) -> Any:
    return importlib.import_module("rbcc" + module[len("bcc") :])


def _resolve(module: str, name: str) -> Any:
    obj = _rbcc_module(module)
    for part in name.split("."):
        obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
    return obj


def test_what_the_table_says_rbcc_has_it_has() -> None:
    kinds = {(n.module, n.name): n.kind for n in _survey()}
    absent = []
    for (module, name), status in _statuses().items():
        if status == "later":
            continue
        try:
            _resolve(module, name)
        except AttributeError:
            if kinds[(module, name)] != "instance":  # those are checked on objects, as root, below
                absent.append(f"{module} {name} ({status})")
    assert not absent, f"marked as there, but rbcc has no such name: {absent}"


def test_what_the_table_refuses_raises_unsupported_error_naming_why() -> None:
    from rbcc import BPF, UnsupportedError

    refused = [name for (module, name), status in _statuses().items() if status == "refused"]
    assert refused, "the table refuses nothing: this test would check nothing"
    for name in refused:
        assert name.startswith("BPF."), f"{name}: check it here"
        member = inspect.getattr_static(BPF, name[len("BPF.") :])
        bare = object.__new__(BPF)  # refusing needs nothing of a loaded object
        with pytest.raises(UnsupportedError) as info:
            if isinstance(member, property):
                assert member.fget is not None
                member.fget(bare)
            else:
                member(bare, *["x"] * (len(inspect.signature(member).parameters) - 1))
        assert info.value.name == name and info.value.reason and "not supported by rbcc" in str(info.value)


USDT_C = r"""
#include <sys/sdt.h>
int main(int argc, char **argv) { DTRACE_PROBE2(rbcc, tick, argc, argv[0]); return 0; }
"""

PROGRAM = r"""
BPF_HASH(hash, u32, u64);
BPF_ARRAY(arr, u64, 2);
BPF_PERCPU_HASH(pch, u32, u32);
BPF_PERCPU_ARRAY(pca, u64, 2);
BPF_QUEUE(queue, u64, 4);
int fn(void *ctx) { return 0; }
"""


@pytest.mark.needs_root
def test_instance_attributes_are_on_the_objects(tmp_path: Path) -> None:
    from _bpfutil import build_c_program

    from rbcc import BPF, USDT
    from rbcc.table import FileDesc

    statuses = _statuses()
    wanted = [n for n in _survey() if n.kind == "instance" and statuses[(n.module, n.name)] in ("same", "stricter")]
    with BPF(text=PROGRAM) as b:
        fd = FileDesc(os.dup(0))
        binary = build_c_program(tmp_path, "usdt", USDT_C, "-O1")
        usdt = USDT(path=str(binary))
        probe = usdt.enumerate_probes()[0]
        location = probe.get_location(0)
        objects: dict[str, Any] = {
            "BPF": b,
            "BPF.Function": b.load_func("fn", BPF.KPROBE),
            "TableBase": b["hash"],
            "TableBase.Iter": b["hash"].Iter(b["hash"]),
            "ArrayBase.Iter": b["arr"].Iter(b["arr"]),
            "PerCpuHash": b["pch"],
            "PerCpuArray": b["pca"],
            "QueueStack": b["queue"],
            "FileDesc": fd,
            "ArgString": __import__("rbcc").ArgString("x"),
            "USDT": usdt,
            "USDTProbe": probe,
            "USDTProbeLocation": location,
            "USDTProbeArgument": location.get_argument(0),
            "Perf.perf_event_attr": __import__("rbcc").Perf.perf_event_attr(),
            "SymbolCache": __import__("rbcc").SymbolCache(os.getpid()),
            "StackTrace.StackWalker": __import__("rbcc").table.StackTrace.StackWalker((ctypes.c_uint64 * 2)(1), 0),
        }
        absent = []
        for n in wanted:
            owner, _, attr = n.name.rpartition(".")
            assert owner in objects, f"{n.module} {n.name}: no object of {owner} to check it on"
            try:
                getattr(objects[owner], attr)
            except AttributeError:
                absent.append(f"{n.module} {n.name}")
        fd.clean_up()
        assert not absent, f"marked as there, but the objects lack: {absent}"
        assert b["hash"].flags == 0 and isinstance(b["pch"].sLeaf(), ctypes.c_uint)
