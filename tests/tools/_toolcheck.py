"""What the tools' tests share: running rbcc as a user would (``python -m rbcc ...`` in a child, to
its end), a tool's C for given options, and the two checks of a tool whose only source is kprobes:
its programs pass the verifier, and without kprobes it stops with one line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from types import ModuleType

from _bpfutil import child_env

from rbcc import BPF


def run_rbcc(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m rbcc ARGV...`` run to its end, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "rbcc", *argv],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )


def spawn_rbcc(*argv: str) -> subprocess.Popen[str]:
    """``python -m rbcc ARGV...`` started as a user would, its output and errors piped, as text."""
    return subprocess.Popen(
        [sys.executable, "-m", "rbcc", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def text_of(tool: ModuleType, *argv: str) -> str:
    """The C the tool module builds for these command line options."""
    return tool.bpf_text(tool.build_parser().parse_args(list(argv)))


def refusal_line(*argv: str) -> str:
    """Run ``python -m rbcc ARGV...``, which must fail (status 1) with one line on stderr and nothing on
    stdout; the line."""
    done = run_rbcc(*argv)
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    return line


def assert_kprobes_load(text: str, functions: Iterable[str]) -> None:
    """Each of ``functions`` in the C ``text`` loads as a kprobe program (through the verifier)."""
    b = BPF(text=text)
    with b:
        for fn in functions:
            assert b.load_func(fn, BPF.KPROBE).fd > 0, fn
