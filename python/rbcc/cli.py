"""The ``rbcc`` command: ``rbcc run SCRIPT [ARGS...]`` runs an existing bcc script unmodified.

Inside the run, ``bcc`` and its submodules are rbcc's: ``import bcc``, ``from bcc import BPF``,
``from bcc.utils import printb`` and ``from bcc.syscall import syscall_name`` all resolve to rbcc.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import runpy
import sys
from collections.abc import Sequence
from types import ModuleType

from .errors import BPFError


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


def run_script(script: str, args: Sequence[str]) -> int:
    alias_bcc()
    sys.argv = [script, *args]
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
        print(f"{sys.argv[0]}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rbcc", description="bcc's Python frontend, without LLVM in the process.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run an existing bcc Python script unmodified (import bcc → rbcc)")
    run.add_argument("script", help="the bcc script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the script's own arguments")
    opts = parser.parse_args(argv)
    if opts.command == "run":
        return run_script(opts.script, opts.args)
    parser.error(f"unknown command {opts.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
