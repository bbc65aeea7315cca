#!/usr/bin/env python3
"""javastat: activity stats of Java processes (calls, GCs, allocations, ... per second) (ustat -l java).

rbcc's ustat with the language set to java, as bcc's javastat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "javastat", "java"


def build_parser() -> argparse.ArgumentParser:
    return ustat.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return ustat.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return ustat.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
