"""What the language tools' tests share: Debian's python3 (built with its USDT probes, unlike the
interpreter running the tests) as a traced child that waits for a line on stdin before its work, and
a tool run around that work."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from _bpfutil import run_interrupted

from rbcc import USDT

DEBIAN_PYTHON = "/usr/bin/python3"

# CPython 3.11 fires function__entry/return only on its tracing path: a profile function puts it there
# (cpython issue 98894); the function itself is C code the probes do not see
PROFILE_ON = "import sys\nsys.setprofile(lambda *a: None)\n"


def usdt_python() -> str:
    """Debian's python3, which has CPython's USDT probes; skips the test where there is none."""
    python = os.path.realpath(DEBIAN_PYTHON)
    if not os.path.exists(python):
        pytest.skip(f"no {DEBIAN_PYTHON}: the tests trace Debian's python3, which has USDT probes")
    names = {p.name for p in USDT(path=python).enumerate_probes()}
    if b"function__entry" not in names or b"gc__start" not in names:
        pytest.skip(f"{python} has no USDT probes (built without --with-dtrace)")
    return python


def python_child(tmp_path: Path, body: str, profile: bool = True) -> subprocess.Popen[bytes]:
    """Debian's python3 running ``body`` once a line arrives on its stdin (the tool attaches first)."""
    script = tmp_path / "child.py"
    script.write_text((PROFILE_ON if profile else "") + "import sys\nsys.stdin.readline()\n" + body)
    return subprocess.Popen([usdt_python(), str(script)], stdin=subprocess.PIPE)


def run_on_child(
    argv: list[str],
    child: subprocess.Popen[bytes],
    header: Callable[[str], bool],
    seen: Callable[[str], bool] = lambda out: True,
) -> str:
    """Run ``rbcc tool ARGV...``; once its header is out, let ``child`` do its work, wait for the child's
    end and ``seen`` (for tools that print as events come), then Ctrl-C the tool: its output."""

    def go() -> None:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()

    try:
        out, _ = run_interrupted(argv, header, go, lambda out: child.poll() is not None and seen(out), timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    return out
