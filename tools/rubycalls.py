#!/usr/bin/env python3
"""rubycalls: summarize Ruby method calls, with counts and (-L) latencies (ucalls -l ruby).

rbcc's ucalls with the language set to ruby, as bcc's rubycalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "rubycalls", "ruby"


def build_parser() -> argparse.ArgumentParser:
    return ucalls.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return ucalls.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return ucalls.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
