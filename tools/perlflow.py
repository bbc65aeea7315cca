#!/usr/bin/env python3
"""perlflow: trace Perl method execution flow, indented by call depth (uflow -l perl).

rbcc's uflow with the language set to perl, as bcc's perlflow wrapper runs it: see uflow for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import uflow

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "perlflow", "perl"


def build_parser() -> argparse.ArgumentParser:
    return uflow.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return uflow.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return uflow.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
