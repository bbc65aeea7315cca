#!/usr/bin/env python3
"""nodestat: activity stats of Node.js processes (calls, GCs, allocations, ... per second) (ustat -l node).

rbcc's ustat with the language set to node, as bcc's nodestat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "nodestat", "node"


def build_parser() -> argparse.ArgumentParser:
    return ustat.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return ustat.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return ustat.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
