#!/usr/bin/env python3
"""tclobjnew: summarize Tcl object allocations by type (uobjnew -l tcl).

rbcc's uobjnew with the language set to tcl, as bcc's tclobjnew wrapper runs it: see uobjnew for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import uobjnew

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "tclobjnew", "tcl"


def build_parser() -> argparse.ArgumentParser:
    return uobjnew.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return uobjnew.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return uobjnew.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
