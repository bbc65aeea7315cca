#!/usr/bin/env python3
"""pidpersec: count new processes (and threads) created per second.

Counts at the sched:sched_process_fork tracepoint, which the kernel fires for every task it creates
(fork, vfork and clone: threads too), where bcc counts calls of sched_fork with a kprobe; both fire
once per task created. The tracepoint fires after the task is made, so a fork that fails halfway
(sched_fork counted it) is not counted here.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool pidpersec           # new processes and threads per second, until Ctrl-C
"""

BPF_TEXT = r"""
BPF_ARRAY(stats, u64, 1);

TRACEPOINT_PROBE(sched, sched_process_fork) {
    stats.atomic_increment(0);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    return common.parser("pidpersec", "Count new processes (via fork) per second", EXAMPLES)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); pidpersec has no options that change it."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("pidpersec", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing... Ctrl-C to end.", flush=True)
        stats = b["stats"]
        # the counter is never cleared: a fork counted between a read and a clear would be lost
        seen = 0
        while True:
            # as bcc: Ctrl-C during the second ends the tool (through guard) without a partial line
            time.sleep(1)
            total = stats[0].value
            print("%s: PIDs/sec: %d" % (common.strftime_now(), total - seen), flush=True)
            seen = total


if __name__ == "__main__":
    sys.exit(main())
