"""System call numbers and names for this machine's architecture (bcc's ``bcc.syscall``).

The table comes from the kernel's UAPI header for the architecture (linux-libc-dev), else from
auditd's ``ausyscall --dump``; a number neither knows prints as ``[unknown: N]``.
"""

from __future__ import annotations

import os
import re
import subprocess

__all__ = ["syscall_name", "syscalls"]

_HEADERS = {
    "x86_64": ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"],
    "aarch64": ["/usr/include/aarch64-linux-gnu/asm/unistd.h", "/usr/include/asm-generic/unistd.h"],
}


def _table() -> dict[int, bytes]:
    for path in _HEADERS.get(os.uname().machine, []):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        found = {int(n): name.encode() for name, n in re.findall(r"#define\s+__NR3?2?_(\w+)\s+(\d+)\b", text)}
        if found:
            return found
    try:
        out = subprocess.run(["ausyscall", "--dump"], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    return {int(m[0]): m[1].encode() for m in re.findall(r"^(\d+)\s+(\w+)$", out, re.M)}


# number → name, as bcc exports it (reading one header at import is cheap)
syscalls: dict[int, bytes] = _table()


def syscall_name(syscall_num: int) -> bytes:
    """The name of system call ``syscall_num`` on this architecture, as bytes (b"read")."""
    return syscalls.get(syscall_num, b"[unknown: %d]" % syscall_num)
