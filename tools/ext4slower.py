#!/usr/bin/env python3
"""ext4slower: trace ext4 reads, writes, opens and fsyncs slower than a threshold.

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
    rbcc tool ext4slower             # trace operations slower than 10 ms (default)
    rbcc tool ext4slower 1           # trace operations slower than 1 ms
    rbcc tool ext4slower -j 1        # ... 1 ms, parsable output (csv)
    rbcc tool ext4slower 0           # trace all operations (warning: verbose)
    rbcc tool ext4slower -p 185      # trace PID 185 only
"""


BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>
#include <linux/fs.h>
#include <linux/sched.h>

#define TRACE_READ 0
#define TRACE_WRITE 1
#define TRACE_OPEN 2
#define TRACE_FSYNC 3

struct val_t {
    u64 ts;
    u64 offset;
    struct file *fp;
};

struct data_t {
    u64 type;
    u64 size;
    u64 offset;
    u64 delta_us;
    u32 pid;
    char task[TASK_COMM_LEN];
    char file[DNAME_INLINE_LEN];
};

BPF_HASH(entryinfo, u64, struct val_t);
BPF_PERF_OUTPUT(events);

static __always_inline int remember(struct file *fp, u64 offset) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    if (PID_FILTER)
        return 0;
    struct val_t val = {.ts = bpf_ktime_get_ns(), .offset = offset, .fp = fp};
    entryinfo.update(&id, &val);
    return 0;
}

// read_iter and write_iter: (struct kiocb *iocb, struct iov_iter *to)
int trace_rw_entry(struct pt_regs *ctx) {
    struct kiocb *iocb = (struct kiocb *)PT_REGS_PARM1(ctx);
    return remember(iocb->ki_filp, iocb->ki_pos);
}

// ext4_file_open(struct inode *inode, struct file *filp)
int trace_open_entry(struct pt_regs *ctx) {
    return remember((struct file *)PT_REGS_PARM2(ctx), 0);
}

// ext4_sync_file(struct file *file, loff_t start, loff_t end, int datasync)
int trace_fsync_entry(struct pt_regs *ctx) {
    return remember((struct file *)PT_REGS_PARM1(ctx), 0);
}

static __always_inline int trace_return(struct pt_regs *ctx, int type) {
    u64 id = bpf_get_current_pid_tgid();
    struct val_t *val = entryinfo.lookup(&id);
    if (!val)
        return 0;
    u64 delta_us = (bpf_ktime_get_ns() - val->ts) / 1000;
    struct val_t seen = *val;
    entryinfo.delete(&id);
    if (MIN_US_FILTER)
        return 0;
    struct data_t data = {.type = type, .offset = seen.offset, .delta_us = delta_us, .pid = id >> 32};
    data.size = type == TRACE_READ || type == TRACE_WRITE ? PT_REGS_RC(ctx) : 0;
    bpf_get_current_comm(&data.task, sizeof(data.task));
    struct dentry *de = NULL;
    bpf_probe_read_kernel(&de, sizeof(de), &seen.fp->f_path.dentry);
    const unsigned char *name = NULL;
    if (de)
        bpf_probe_read_kernel(&name, sizeof(name), &de->d_name.name);
    if (name)
        bpf_probe_read_kernel_str(&data.file, sizeof(data.file), name);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}

int trace_read_return(struct pt_regs *ctx) { return trace_return(ctx, TRACE_READ); }
int trace_write_return(struct pt_regs *ctx) { return trace_return(ctx, TRACE_WRITE); }
int trace_open_return(struct pt_regs *ctx) { return trace_return(ctx, TRACE_OPEN); }
int trace_fsync_return(struct pt_regs *ctx) { return trace_return(ctx, TRACE_FSYNC); }
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("ext4slower", "Trace common ext4 file operations slower than a threshold", EXAMPLES)
    fsops.add_slower_options(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("PID_FILTER", common.pid_condition("pid", args.pid))
        .replace("MIN_US_FILTER", f"delta_us <= {args.min_ms * 1000}" if args.min_ms else "0")
        .replace("DNAME_INLINE_LEN", "32")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("ext4slower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = fsops.load(
        args,
        "ext4slower",
        "ext4",
        bpf_text(args),
        "trace_rw_entry",
        "`rbcc tool biosnoop` shows slow disk I/O with its process",
        why=fsops.EXT4_WHY,
    )
    if b is None:
        return 0
    with b:
        fsops.print_slower_events(b, args, "ext4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
