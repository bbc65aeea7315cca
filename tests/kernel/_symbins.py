"""Programs for the symbol tests, built the ways distributions ship binaries: with their symbols, or
stripped with the symbols in a separate debug file that a ``.gnu_debuglink`` names or a debug
directory holds by build id (``.build-id/xx/yyyy.debug``), or stripped with MiniDebugInfo (an
xz-compressed symbol table in ``.gnu_debugdata``, as Fedora ships them). Each build has a build id of
its own, so no debug directory holds another's debug file. ``spinning`` runs one and gives the
addresses of its functions, which it prints."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from _bpfutil import build_c_program

# rbcc_hidden_leaf is static: no dynamic symbol table has it, so a stripped binary has no name for
# it. Its loop is two functions inlined one in the other, for DWARF's inlined frames.
SPIN_C = r"""
#include <stdio.h>

static volatile unsigned long sink;

static inline __attribute__((always_inline)) void rbcc_inner_step(void) { sink += 3; }
static inline __attribute__((always_inline)) void rbcc_outer_step(void) { rbcc_inner_step(); sink ^= 5; }

__attribute__((noinline)) static void rbcc_hidden_leaf(void) {
    for (;;)
        rbcc_outer_step();
}

int main(void) {
    printf("%p %p\n", (void *)rbcc_hidden_leaf, (void *)main);
    fflush(stdout);
    rbcc_hidden_leaf();
}
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: cannot build the test binaries (binutils, xz-utils)")
    return path


def _run(*argv: str | Path) -> str:
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, text=True).stdout


def build_id_of(path: str | Path) -> str:
    """The build id of an ELF file, as hex (readelf's)."""
    for line in _run(_tool("readelf"), "-n", path).splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    raise AssertionError(f"{path} has no build id")


def full(tmp: Path, name: str = "spin") -> Path:
    """The program with its symbols and DWARF (-O2, so the steps are inlined)."""
    build_id = "0x" + os.urandom(20).hex()
    return build_c_program(tmp, name, SPIN_C, "-g", "-O2", "-fno-omit-frame-pointer", f"-Wl,--build-id={build_id}")


def with_debuglink(tmp: Path) -> Path:
    """Stripped, its symbols in ``spin.debug`` beside it, which its ``.gnu_debuglink`` names."""
    source = full(tmp, "spin-full")
    objcopy = _tool("objcopy")
    _run(objcopy, "--only-keep-debug", source, tmp / "spin.debug")
    _run(objcopy, "--strip-all", f"--add-gnu-debuglink={tmp / 'spin.debug'}", source, tmp / "spin")
    return tmp / "spin"


def with_build_id_file(tmp: Path, debug_dir: Path) -> Path:
    """Stripped, no debug link: its symbols only in ``debug_dir/.build-id/xx/yyyy.debug``."""
    source = full(tmp, "spin-full")
    build_id = build_id_of(source)
    debug = debug_dir / ".build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    _run(_tool("objcopy"), "--only-keep-debug", source, debug)
    _run(_tool("strip"), "--strip-all", "-o", tmp / "spin", source)
    return tmp / "spin"


def with_minidebuginfo(tmp: Path) -> Path:
    """Stripped, with Fedora's MiniDebugInfo: the function symbols the dynamic table lacks, in an ELF
    file compressed with xz, as section ``.gnu_debugdata``."""
    source = full(tmp, "spin-full")
    nm, objcopy = _tool("nm"), _tool("objcopy")
    dynamic = set(_run(nm, "-D", "--format=posix", "--defined-only", source).split())
    functions = [
        parts[0]
        for parts in (line.split() for line in _run(nm, "--format=posix", "--defined-only", source).splitlines())
        if parts[1] in ("T", "t") and parts[0] not in dynamic
    ]
    (tmp / "keep").write_text("\n".join(functions) + "\n")
    mini = tmp / "mini"
    _run(objcopy, "--only-keep-debug", source, mini)
    _run(objcopy, "--strip-all", f"--keep-symbols={tmp / 'keep'}", "--remove-section=.comment", mini)
    _run(_tool("xz"), "-f", mini)
    _run(_tool("strip"), "--strip-all", "-o", tmp / "spin", source)
    _run(objcopy, f"--add-section=.gnu_debugdata={mini}.xz", tmp / "spin")
    return tmp / "spin"


class Spinning(NamedTuple):
    pid: int
    leaf: int  # rbcc_hidden_leaf's address in the process
    main: int


@contextlib.contextmanager
def spinning(binary: Path) -> Iterator[Spinning]:
    """``binary`` running (spinning in rbcc_hidden_leaf), with its functions' addresses."""
    child = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        leaf, main = (int(a, 16) for a in child.stdout.readline().split())
        yield Spinning(child.pid, leaf, main)
    finally:
        child.kill()
        child.wait()
