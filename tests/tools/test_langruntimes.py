"""The other runtimes' probes, live where this machine's interpreter has them: ucalls counts a function a
script of the test's own calls 17 times (Perl, PHP, Ruby, Tcl), nodegc sees a forced collection. Each
test skips naming what is missing: the interpreter, or the USDT probes in it (Debian builds Perl, Tcl and
Node without them); their C is covered without them in test__languages.py and test_langwrappers.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from _langkids import run_on_child

from rbcc import USDT
from rbcc.errors import USDTException

# each waits for a line on stdin, then calls rbcc_fn 17 times
SCRIPTS = {
    "perl": ("perl", [], "<STDIN>;\nsub rbcc_fn { return 1; }\nrbcc_fn() for 1..17;\n"),
    "php": (
        "php",
        [],
        "<?php\nfgets(STDIN);\nfunction rbcc_fn() { return 1; }\nfor ($i = 0; $i < 17; $i++) rbcc_fn();\n",
    ),
    "ruby": ("ruby", [], "$stdin.gets\ndef rbcc_fn\n  1\nend\n17.times { rbcc_fn }\n"),
    "tcl": ("tclsh", [], "gets stdin\nproc rbcc_fn {} { return 1 }\nfor {set i 0} {$i < 17} {incr i} { rbcc_fn }\n"),
}


def _child(interpreter: str, flags: list[str], script: Path, probe: str) -> subprocess.Popen[bytes]:
    """The interpreter running ``script``; skips (ending it) where the process has no ``probe``."""
    path = shutil.which(interpreter)
    if path is None:
        pytest.skip(f"{interpreter} is not installed")
    env = {**os.environ, "USE_ZEND_DTRACE": "1"}  # PHP fires its probes only with it
    child = subprocess.Popen([path, *flags, str(script)], stdin=subprocess.PIPE, env=env)
    names: set[bytes] = set()
    for _ in range(20):  # until the runtime's libraries are mapped
        try:
            names = {p.name for p in USDT(pid=child.pid).enumerate_probes()}
        except (USDTException, OSError):
            names = set()
        if probe.encode() in names:
            return child
        time.sleep(0.1)
    child.kill()
    child.wait()
    pytest.skip(f"{os.path.realpath(path)} has no USDT probe {probe} (built without DTrace/SystemTap probes)")


@pytest.mark.needs_root
@pytest.mark.parametrize("lang", sorted(SCRIPTS))
def test_ucalls_counts_a_scripts_calls(lang: str, tmp_path: Path) -> None:
    interpreter, flags, text = SCRIPTS[lang]
    script = tmp_path / "script"
    script.write_text(text)
    entry = {"perl": "sub__entry", "php": "function__entry", "ruby": "method__entry", "tcl": "proc__entry"}[lang]
    child = _child(interpreter, flags, script, entry)
    header = lambda h: h.startswith(f"Tracing calls in process {child.pid} (language: {lang})")  # noqa: E731
    out = run_on_child(["tool", "ucalls", "-l", lang, str(child.pid)], child, header)
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0].endswith("rbcc_fn")]
    assert [r[-1] for r in rows] == ["17"], out


@pytest.mark.needs_root
def test_nodegc_sees_a_forced_collection(tmp_path: Path) -> None:
    script = tmp_path / "gc.js"
    script.write_text("process.stdin.once('data', () => { global.gc(); process.exit(0); });\n")
    child = _child("node", ["--expose-gc"], script, "gc__start")
    header = lambda h: h.startswith(f"Tracing garbage collections in node process {child.pid}")  # noqa: E731
    out = run_on_child(["tool", "nodegc", str(child.pid)], child, header, lambda out: "GC " in out)
    assert any("GC mark-sweep-compact" in line for line in out.splitlines()[2:]), out
