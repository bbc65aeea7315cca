#!/usr/bin/env python3
"""bitesize: show block device I/O sizes as a histogram per process name.

Sizes are those of requests issued to the driver (block:block_rq_issue), by the comm the tracepoint
records, as bcc's bitesize reads them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.export import Histogram, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool bitesize        # block I/O size histograms by process, until Ctrl-C
"""

BPF_TEXT = r"""
struct proc_key_t {
    char name[TASK_COMM_LEN];
    u64 slot;
};

BPF_HISTOGRAM(dist, struct proc_key_t);

TRACEPOINT_PROBE(block, block_rq_issue) {
    struct proc_key_t key = {.slot = bpf_log2l(args->bytes / 1024)};
    __builtin_memcpy(&key.name, args->comm, sizeof(key.name));
    dist.atomic_increment(key);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    return common.parser("bitesize", "Block I/O size histogram by process name", EXAMPLES)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (the same for every run: bitesize has no options)."""
    return BPF_TEXT


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool bitesize``: block I/O size in bytes, per process name."""
    labels = (Label("comm", "name", "comm"),)
    size = Histogram("dist", "rbcc_bitesize_bytes", "Block I/O size at issue", labels, unit="kbytes")
    return Program("bitesize", bpf_text(args), metrics=(size,))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("bitesize", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    print("Tracing block I/O... Hit Ctrl-C to end.", flush=True)
    with b:
        try:
            time.sleep(99999999)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the tracing: print what was gathered
        b["dist"].print_log2_hist("Kbytes", "Process Name", section_print_fn=lambda n: n.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
