#!/usr/bin/env python3
"""btrfsdist: summarize btrfs operation latency (reads, writes, opens, fsyncs) as histograms.

bcc's btrfsdist, with its options and output: `rbcc tool fsdist -t btrfs` in bcc's form. It times
btrfs's file operations with kprobes and kretprobes (see rbcc._tools.fsops for the functions); they
have no tracepoints, so a kernel without kprobes cannot run it: it says so in one line and exits with
status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import fsops

__all__ = ["bpf_text", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    return fsops.bcc_dist_parser("btrfs")


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return fsops.dist_text(args, "btrfs", getattr=False)


def main(argv: Sequence[str] | None = None) -> int:
    return fsops.bcc_dist_main("btrfs", argv)


if __name__ == "__main__":
    sys.exit(main())
