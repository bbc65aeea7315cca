"""Toolchain selection end to end: each LLVM installation compiles into cache entries of its own, and a
mismatched clang and libclang are refused with one line naming both. Each compile runs in a process of its
own: the toolchain is found once per process, as a tool's is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bpfutil import target_cflags

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    bpf_trace_printk("getppid\n");
    return 0;
}
"""

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from rbcc import BPF, ToolchainError
try:
    b = BPF(text=sys.argv[1], cflags=sys.argv[2:])
except ToolchainError as e:
    print("refused", e.clang, "|", e.libclang, "|", e)
else:
    print("hit" if b.cache_hit else "miss")
"""


def installations() -> list[Path]:
    """The /usr/lib/llvm-N with both a clang and a libclang, newest first."""
    found = [
        d
        for d in Path("/usr/lib").glob("llvm-*")
        if (d / "bin/clang").exists() and any((d / "lib").glob("libclang-*.so*"))
    ]
    return sorted(found, key=lambda d: int(d.name.split("-")[1]), reverse=True)


def run(cache: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("RBCC_CLANG", "LIBCLANG_PATH")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, PROGRAM, *target_cflags()],
        env={**clean, "RBCC_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO / "python"), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def entries(cache: Path) -> int:
    return len(list((cache / "obj").glob("*/*.entry")))


def test_each_toolchain_has_cache_entries_of_its_own(tmp_path: Path) -> None:
    llvms = installations()
    if len(llvms) < 2:
        pytest.skip("needs two LLVM installations in /usr/lib/llvm-N (make test-toolchains installs them)")
    first, second = ({"RBCC_CLANG": str(d / "bin/clang"), "LIBCLANG_PATH": str(d / "lib")} for d in llvms[:2])
    assert (run(tmp_path, **first), entries(tmp_path)) == ("miss", 1)
    assert (run(tmp_path, **first), entries(tmp_path)) == ("hit", 1)
    assert (run(tmp_path, **second), entries(tmp_path)) == ("miss", 2)
    assert (run(tmp_path, **second), run(tmp_path, **first), entries(tmp_path)) == ("hit", "hit", 2)


def test_a_mismatched_pair_is_refused_naming_both(tmp_path: Path) -> None:
    llvms = installations()
    if len(llvms) < 2:
        pytest.skip("needs two LLVM installations in /usr/lib/llvm-N (make test-toolchains installs them)")
    clang, lib = llvms[0] / "bin/clang", llvms[1] / "lib"
    said = run(tmp_path, RBCC_CLANG=str(clang), LIBCLANG_PATH=str(lib))
    assert said.startswith("refused ") and "\n" not in said, said
    names, _, message = said.removeprefix("refused ").partition(" | ")
    assert names == f"{clang} (LLVM {llvms[0].name[5:]})"
    assert f"{lib}" in message.split(" | ")[0] and f"(LLVM {llvms[1].name[5:]})" in message
    assert "different LLVM versions" in message
    assert entries(tmp_path) == 0


def settled(log: Path) -> None:
    """Wait until `log` has not grown for 3 s (at most 2 minutes)."""
    deadline, last, still = time.monotonic() + 120, -1, 0.0
    while time.monotonic() < deadline and still < 3:
        size = log.stat().st_size
        still = still + 0.5 if size == last else 0.0
        last = size
        time.sleep(0.5)


def test_a_cache_hit_runs_no_clang_even_when_its_path_tells_no_version(tmp_path: Path) -> None:
    """A clang in a directory of its own (no llvm-N, no clang-N) costs one `clang --version` on a miss, so a
    mismatch is refused before the compile; a hit runs nothing at all."""
    real = installations()[0] / "bin/clang" if installations() else Path("/usr/bin/clang")
    calls = tmp_path / "calls"
    wrapper = tmp_path / "bin/clang"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    cache = tmp_path / "cache"
    assert run(cache, RBCC_CLANG=str(wrapper)) == "miss"
    ran = calls.read_text().split()
    assert ran.count("--version") == 1 and len(ran) >= 2, ran  # the version, then the compile (and PCH builds)
    settled(calls)  # the background PCH builds the miss started (they outlive it) have finished
    calls.write_text("")
    assert run(cache, RBCC_CLANG=str(wrapper)) == "hit"
    assert calls.read_text() == ""
