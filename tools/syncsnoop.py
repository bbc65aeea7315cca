#!/usr/bin/env python3
"""syncsnoop: trace sync() syscalls, with the time of each call.

Uses the sync syscall's tracepoint (sys_enter_sync) instead of bcc's kprobe on the syscall function.
As the bcc version this follows, it sees sync() only: syncfs(), fsync(), fdatasync() are not shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool syncsnoop           # trace sync() calls, with their times
"""

BPF_TEXT = r"""
struct data_t {
    u64 ts;
};

BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_sync) {
    struct data_t data = {.ts = bpf_ktime_get_ns() / 1000};
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    return common.parser("syncsnoop", "Trace sync() syscall", EXAMPLES)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); syncsnoop has no options that change it."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("syncsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    print("%-18s %s" % ("TIME(s)", "CALL"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        # the time is the monotonic clock's, in seconds, as bcc prints it
        print("%-18.9f sync()" % (e.ts / 1e6), flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
