"""The ``rbcc`` command: ``rbcc run SCRIPT [ARGS...]`` runs an existing bcc script unmodified; ``rbcc doctor``
reports what the machine lacks for tracing (rbcc._doctor).

Inside the run, ``bcc`` and its submodules are rbcc's: ``import bcc``, ``from bcc import BPF``,
``from bcc.utils import printb`` and ``from bcc.syscall import syscall_name`` all resolve to rbcc.
A script that is not Python (bcc's language tools are shell wrappers around a Python tool) runs as
itself, with the Python programs it starts seeing the same aliases.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .errors import BPFError, VerifierError

__all__ = ["TOOL_ALIASES", "alias_bcc", "main", "report_bpf_errors", "run_script", "run_tool"]


class _BccAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of ``bcc`` and ``bcc.X`` with the modules ``rbcc`` and ``rbcc.X``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "bcc" and not fullname.startswith("bcc."):
            return None
        real = "rbcc" + fullname[len("bcc") :]
        if importlib.util.find_spec(real) is None:
            return None  # the import fails as usual: rbcc has no such module (yet)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == "bcc")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module("rbcc" + spec.name[len("bcc") :])

    def exec_module(self, module: ModuleType) -> None:
        return None  # the rbcc module is already imported


def alias_bcc() -> None:
    """Make ``bcc`` importable as rbcc in this process (``rbcc run`` does this before the script)."""
    if not any(isinstance(f, _BccAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, _BccAlias())


def _error_line(error: BPFError) -> str:
    """What ends a script a BPFError stopped: the program, the error's class and message; a verifier log
    that went to stderr already (as bcc prints it) is not repeated."""
    said = str(error)
    if isinstance(error, VerifierError) and error.log_printed and error.log and said.endswith(error.log):
        head = said[: len(said) - len(error.log)].splitlines()  # the reason, and libbpf's line naming the function
        said = " ".join(line.strip() for line in head if line.strip()) + " (the verifier's log is above)"
    return f"{sys.argv[0]}: {type(error).__name__}: {said}"


def report_bpf_errors() -> None:
    """Uncaught BPFErrors end the program with one line that says what the kernel refused, not with a
    traceback through rbcc's insides; Ctrl-C ends it quietly, as bcc's tools end."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if isinstance(value, BPFError):
            print(_error_line(value), file=sys.stderr)
        elif not isinstance(value, KeyboardInterrupt):
            previous(kind, value, tb)

    sys.excepthook = hook


# What a Python program that a non-Python script starts imports as `bcc`: rbcc, aliased as in-process.
_SHIM = """\
import sys

import rbcc
from rbcc.cli import alias_bcc, report_bpf_errors

alias_bcc()
report_bpf_errors()
sys.modules[__name__] = rbcc
"""


def _is_python(script: str) -> bool:
    try:
        with open(script, "rb") as f:
            first = f.readline(256)
    except OSError:
        return True  # runpy gives the usual error
    return not first.startswith(b"#!") or b"python" in first


def _in_foreground_group() -> bool:
    try:
        with open("/dev/tty") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:
        return False  # no controlling terminal


def _run_program(script: str, args: Sequence[str]) -> int:
    """Run a non-Python script (a shell wrapper) as itself; a directory first on PYTHONPATH answers
    `import bcc` with rbcc in every Python program it starts, whatever interpreter their #! names."""
    if not os.access(script, os.X_OK):
        print(f"rbcc run: {script} is neither a Python script nor executable", file=sys.stderr)
        return 126
    shim = tempfile.mkdtemp(prefix="rbcc-run-")
    try:
        os.mkdir(os.path.join(shim, "bcc"))
        with open(os.path.join(shim, "bcc", "__init__.py"), "w") as f:
            f.write(_SHIM)
        # rbcc itself (and nothing else of this environment) must be importable there too
        os.symlink(os.path.dirname(os.path.abspath(__file__)), os.path.join(shim, "rbcc"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (shim, env.get("PYTHONPATH", "")) if p)
        # The tools end on Ctrl-C. From the terminal it reaches every process of its foreground group,
        # ours included, so there we only outlive it to pass on the exit status. Sent to us alone
        # (kill, a test), a shell would hold it until its child exits: the script then runs in a
        # group of its own, and we send the signal on to that whole group.
        in_terminal_group = _in_foreground_group()
        child = subprocess.Popen([script, *args], env=env, start_new_session=not in_terminal_group)

        def pass_on(signum: int, frame: Any) -> None:
            if not in_terminal_group:
                os.killpg(child.pid, signum)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, pass_on)
        code = child.wait()
        return 128 - code if code < 0 else code
    finally:
        shutil.rmtree(shim, ignore_errors=True)


def _mount_debugfs() -> None:
    """bcc's scripts find tracing files under /sys/kernel/debug/tracing (tplist, bpflist, reset-trace),
    where systemd mounts debugfs at boot on most machines: mount it there if it is not (as root; the
    kernel then mounts tracefs at its tracing/). Where that fails, the script says what it misses."""
    if os.geteuid() != 0 or os.path.isdir("/sys/kernel/debug/tracing"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount(b"debugfs", b"/sys/kernel/debug", b"debugfs", ctypes.c_ulong(0), None)


def run_script(script: str, args: Sequence[str]) -> int:
    if not os.path.isfile(script):
        # as python says it, in one line, with its exit status
        why = "is a directory" if os.path.isdir(script) else "No such file or directory"
        print(f"rbcc run: can't open file {script!r}: {why}", file=sys.stderr)
        return 2
    _mount_debugfs()
    if not _is_python(script):
        return _run_program(script, args)
    alias_bcc()
    sys.argv = [script, *args]
    # `python SCRIPT` puts the script's directory first on the path: its neighbours import
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BPFError as e:
        # The script could not do what it asked of the kernel: say so, without rbcc's insides.
        print(_error_line(e), file=sys.stderr)
        return 1
    return 0


def run_tool(name: str | None, args: Sequence[str]) -> int:
    from . import tools

    if name is None:
        width = max(len(n) for n in tools.names())
        for n in tools.names():
            summary = tools.summary(n)
            print(f"{n:<{width}}  {summary.split(': ', 1)[-1]}")
        return 0
    # bcc's reset-trace is a module name here: reset_trace
    name = name.replace("-", "_")
    if name not in tools.names():
        print(f"rbcc tool: no tool named {name!r} (`rbcc tool` lists them)", file=sys.stderr)
        return 2
    return tools.run(name, args)


# `rbcc trace ...` is `rbcc tool trace ...`: bcc's multi-tools, one probe-spec parser (rbcc._specs)
TOOL_ALIASES = ("trace", "argdist", "funccount", "stackcount")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOL_ALIASES:
        # before argparse, which would take the tool's own options (-p, -h, ...) as rbcc's
        return run_tool(argv[0], argv[1:])
    if argv and argv[0] == "export":
        from .export.cli import main as export_main  # its own options; only `rbcc export` imports it

        return export_main(argv[1:])
    if argv and argv[0] == "doctor":
        from ._doctor import main as doctor_main

        return doctor_main(argv[1:])
    parser = argparse.ArgumentParser(prog="rbcc", description="bcc's Python frontend, without LLVM in the process.")
    sub = parser.add_subparsers(dest="command", required=True)
    for alias in TOOL_ALIASES:
        sub.add_parser(alias, help=f"rbcc tool {alias} (`rbcc {alias} -h` shows its options)", add_help=False)
    sub.add_parser("export", help="serve BPF maps to Prometheus and OpenTelemetry (`rbcc export -h`)", add_help=False)
    sub.add_parser("doctor", help="what this machine lacks for tracing, and the command that fixes each piece")
    run = sub.add_parser("run", help="run an existing bcc Python script unmodified (import bcc → rbcc)")
    run.add_argument("script", help="the bcc script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    tool = sub.add_parser("tool", help="run one of rbcc's tools (bcc's options and output); alone, list them")
    tool.add_argument("name", nargs="?", help="the tool; `rbcc tool NAME -h` shows its options")
    tool.add_argument("args", nargs=argparse.REMAINDER, help="the tool's own arguments")
    opts = parser.parse_args(argv)
    if opts.command == "run":
        return run_script(opts.script, opts.args)
    if opts.command == "tool":
        return run_tool(opts.name, opts.args)
    parser.error(f"unknown command {opts.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
