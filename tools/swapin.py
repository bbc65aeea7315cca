#!/usr/bin/env python3
"""swapin: count swap-ins by process, per interval.

A kprobe on the kernel's swap read, as bcc: swap_read_folio (Linux 6.10 and later) or swap_readpage
(before), whichever this kernel has. The task that reads a page in is counted, readahead's pages
included. No tracepoint marks a swap-in, so a kernel without kprobes cannot run it: it says so in one
line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import block, common

__all__ = ["FUNCTIONS", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool swapin          # count swap-ins by process, every second
    rbcc tool swapin -T 5 3   # without timestamps, every 5 seconds, 3 times
"""

FUNCTIONS = ("swap_read_folio", "swap_readpage")  # newest name first

BPF_TEXT = r"""
#include <linux/sched.h>

struct key_t {
    u32 pid;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(counts, struct key_t, u64);

int count_swapin(struct pt_regs *ctx) {
    struct key_t key = {.pid = bpf_get_current_pid_tgid() >> 32};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    u64 zero = 0;
    u64 *count = counts.lookup_or_try_init(&key, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("swapin", "Count swapin events by process.", EXAMPLES)
    p.add_argument("-T", "--notime", action="store_true", help="do not show the timestamp (HH:MM:SS)")
    p.add_argument("interval", nargs="?", type=common.positive_int, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (the same for every run)."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("swapin", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if not args.ebpf:
        block.need_kprobes(
            "swapin",
            " or ".join(FUNCTIONS),
            "no tracepoint marks a swap-in",
            "vmstat's pswpin counts them, for the whole system",
        )
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        fn = next((f for f in FUNCTIONS if BPF.get_kprobe_functions(f"^{f}$".encode())), FUNCTIONS[0])
        b.attach_kprobe(event=fn, fn_name="count_swapin")
        print("Counting swap ins. Ctrl-C to end.", flush=True)
        counts = b["counts"]
        for last in common.intervals(args.interval, args.count):
            if not args.notime:
                print(time.strftime("%H:%M:%S"))
            print("%-16s %-6s %s" % ("COMM", "PID", "COUNT"))
            for k, v in sorted(counts.items(), key=lambda kv: kv[1].value):
                print("%-16s %-6d %d" % (k.comm.decode("utf-8", "replace"), k.pid, v.value))
            counts.clear()
            print(flush=True)
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
