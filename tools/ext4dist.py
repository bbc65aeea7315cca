#!/usr/bin/env python3
"""ext4dist: summarize ext4 operation latency (reads, writes, opens, fsyncs) as histograms.

It times ext4's file operations (ext4_file_read_iter, ext4_file_write_iter, ext4_file_open,
ext4_sync_file) with kprobes and kretprobes, as bcc. ext4 reads and writes have no tracepoints, so a
kernel without kprobes cannot run it: it says so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, fsops

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool ext4dist            # show operation latency as a histogram
    rbcc tool ext4dist -p 181     # trace PID 181 only
    rbcc tool ext4dist 1 10       # print 1 second summaries, 10 times
    rbcc tool ext4dist -m 5       # 5s summaries, milliseconds
"""

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>

struct dist_key_t {
    char op[16];
    u64 slot;
};

BPF_HASH(start, u32, u64);
BPF_HISTOGRAM(dist, struct dist_key_t);

int trace_entry(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    u32 tid = id;
    if (PID_FILTER)
        return 0;
    u64 now = bpf_ktime_get_ns();
    start.update(&tid, &now);
    return 0;
}

int trace_open_entry(struct pt_regs *ctx) { return trace_entry(ctx); }
int trace_fsync_entry(struct pt_regs *ctx) { return trace_entry(ctx); }

static __always_inline int trace_return(struct pt_regs *ctx, const char *op) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 *since = start.lookup(&tid);
    if (!since)
        return 0;
    u64 delta = (bpf_ktime_get_ns() - *since) / FACTOR;
    start.delete(&tid);
    struct dist_key_t key = {.slot = bpf_log2l(delta)};
    __builtin_memcpy(&key.op, op, sizeof(key.op));
    dist.atomic_increment(key);
    return 0;
}

int trace_read_return(struct pt_regs *ctx) { char op[16] = "read"; return trace_return(ctx, op); }
int trace_write_return(struct pt_regs *ctx) { char op[16] = "write"; return trace_return(ctx, op); }
int trace_open_return(struct pt_regs *ctx) { char op[16] = "open"; return trace_return(ctx, op); }
int trace_fsync_return(struct pt_regs *ctx) { char op[16] = "fsync"; return trace_return(ctx, op); }
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("ext4dist", "Summarize ext4 operation latency", EXAMPLES)
    fsops.add_dist_options(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return BPF_TEXT.replace("PID_FILTER", common.pid_condition("pid", args.pid)).replace(
        "FACTOR", "1000000" if args.milliseconds else "1000"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("ext4dist", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = fsops.load(args, "ext4dist", "ext4", bpf_text(args), "trace_entry", fsops.DIST_ALTERNATIVE, why=fsops.EXT4_WHY)
    if b is None:
        return 0
    with b:
        fsops.print_dist_intervals(b, args, "ext4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
