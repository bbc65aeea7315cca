#!/usr/bin/env python3
"""javagc: summarize Java garbage collections, with their durations (ugc -l java).

rbcc's ugc with the language set to java, as bcc's javagc wrapper runs it: see ugc for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import ugc

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "javagc", "java"


def build_parser() -> argparse.ArgumentParser:
    return ugc.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return ugc.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return ugc.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
