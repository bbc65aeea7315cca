#!/usr/bin/env python3
"""xfsslower: trace XFS reads, writes, opens and fsyncs slower than a threshold.

bcc's xfsslower, with its options and output: `rbcc tool fsslower -t xfs` in bcc's form. It times
XFS's file operations with kprobes and kretprobes (see rbcc._tools.fsops for the functions); they
have no tracepoints, so a kernel without kprobes cannot run it: it says so in one line and exits with
status 1 (`rbcc tool fileslower` times reads and writes at the system calls instead).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import fsops

__all__ = ["bpf_text", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    return fsops.bcc_slower_parser("xfs")


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return fsops.slower_text(args.pid, args.min_ms)


def main(argv: Sequence[str] | None = None) -> int:
    return fsops.bcc_slower_main("xfs", argv)


if __name__ == "__main__":
    sys.exit(main())
