"""Finding the binaries and symbols uprobes attach to (bcc's name resolution: "c" means libc)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from ..errors import AttachError


def file_mappings(pid: int) -> list[tuple[int, int, str]]:
    """(start, end, path) of every file mapping of process ``pid``, from its /proc maps (OSError if gone)."""
    found = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                lo, _, hi = parts[0].partition("-")
                found.append((int(lo, 16), int(hi, 16), parts[5].rstrip("\n")))
    return found


def find_library(name: str) -> str | None:
    """The path of shared library ``name`` ("c", "libc", "libc.so.6"), from the loader cache."""
    base = name if name.startswith("lib") else f"lib{name}"
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        out = ""
    arch = "x86-64" if os.uname().machine == "x86_64" else ""
    for line in out.splitlines():
        entry = line.strip()
        lib, _, rest = entry.partition(" (")
        if (lib == base or lib.startswith(base + ".so")) and (not arch or arch in rest):
            return rest.rpartition("=> ")[2]
    return None


def resolve_binary(name: str, pid: int = -1) -> str:
    """A path for a uprobe target: a path as is, else a library, else an executable on $PATH."""
    if not name:
        raise AttachError("a uprobe needs a binary or library name")
    if "/" in name:
        if pid > 0 and not os.path.exists(name):
            rooted = f"/proc/{pid}/root{name}"
            if os.path.exists(rooted):
                return rooted
        if not os.path.exists(name):
            raise AttachError(f"cannot attach uprobe: {name} does not exist")
        return os.path.realpath(name)
    lib = find_library(name)
    if lib:
        return lib
    exe = shutil.which(name)
    if exe:
        return os.path.realpath(exe)
    raise AttachError(f"cannot find library or executable {name!r} for the uprobe")


# Run in a child process: loading a library runs its constructors, which the user's process must not.
_RESOLVE_CHILD = r"""
import ctypes, json, sys
path, names = sys.argv[1], sys.argv[2:]
lib = ctypes.CDLL(path)
spans = []
for line in open("/proc/self/maps"):
    parts = line.split()
    if len(parts) >= 6 and parts[5] == path:
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        spans.append((lo, hi, int(parts[2], 16)))
found = {}
for name in names:
    try:
        addr = ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
    except AttributeError:
        continue
    for lo, hi, offset in spans:
        if lo <= addr < hi:
            found[name] = addr - lo + offset
print(json.dumps(found))
"""


def is_shared_library(path: str) -> bool:
    return ".so" in os.path.basename(path)


def loader_offsets(path: str, names: list[str]) -> dict[str, int]:
    """The file offsets where the dynamic loader finds ``names`` in shared library ``path``.

    For an IFUNC symbol (libc's strlen, memcpy, ...) the symbol table points at a resolver that picks
    an implementation for this CPU once; the probe belongs on the implementation, which is where the
    loader's lookup leads. Names the loader does not export are left out.
    """
    if not names:
        return {}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _RESOLVE_CHILD, os.path.realpath(path), *names],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if out.returncode != 0:
        return {}
    return {name: int(offset) for name, offset in json.loads(out.stdout or "{}").items()}


def functions_matching(path: str, pattern: str) -> list[tuple[str, int]]:
    """(name, file offset) of each function in ELF ``path`` whose name matches ``pattern``.

    Like bcc, the regex is anchored at the start only (``re.match``), and a function reachable under
    several names (aliases, versioned dynamic symbols) is listed once, under its first name.
    """
    from .. import _core

    regex = re.compile(pattern)
    matches = [(name, offset) for name, _addr, offset in _core.elf_functions(path) if regex.match(name)]
    if is_shared_library(path):
        resolved = loader_offsets(path, sorted({name for name, _ in matches}))
        matches = [(name, resolved.get(name, offset)) for name, offset in matches]
    found: dict[int, str] = {}
    for name, offset in matches:
        found.setdefault(offset, name)
    return [(name, offset) for offset, name in sorted(found.items())]
