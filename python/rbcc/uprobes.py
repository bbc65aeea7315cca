"""Finding the binaries and symbols uprobes attach to (bcc's name resolution: "c" means libc)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from .errors import AttachError


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


def functions_matching(path: str, pattern: str) -> list[tuple[str, int]]:
    """(name, file offset) of each function in ELF ``path`` whose name matches ``pattern``.

    Like bcc, the regex is anchored at the start only (``re.match``), and a function reachable under
    several names (aliases, versioned dynamic symbols) is listed once, under its first name.
    """
    from . import _core

    regex = re.compile(pattern)
    found: dict[int, str] = {}
    for name, _addr, offset in _core.elf_functions(path):
        if offset not in found and regex.match(name):
            found[offset] = name
    return [(name, offset) for offset, name in sorted(found.items())]
