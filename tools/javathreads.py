#!/usr/bin/env python3
"""javathreads: trace Java thread creation (uthreads -l java).

rbcc's uthreads with the language set to java, as bcc's javathreads wrapper runs it: see uthreads for the
options, the output and the probes used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc.tools import uthreads

__all__ = ["bpf_text", "build_parser", "main"]

PROG, LANGUAGE = "javathreads", "java"


def build_parser() -> argparse.ArgumentParser:
    return uthreads.build_parser(PROG, LANGUAGE)


def bpf_text(args: argparse.Namespace) -> str:
    return uthreads.bpf_text(args)


def main(argv: Sequence[str] | None = None) -> int:
    return uthreads.main(argv, PROG, LANGUAGE)


if __name__ == "__main__":
    sys.exit(main())
