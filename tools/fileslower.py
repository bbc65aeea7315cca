#!/usr/bin/env python3
"""fileslower: trace synchronous file reads and writes slower than a threshold.

bcc times vfs_read and vfs_write with kprobes and kretprobes, the file name from the file they are
handed. Here the read, write, pread64, pwrite64, readv and writev system calls are timed from their
entry tracepoint to their exit, the file found from the descriptor in the task's file table (its
dentry's name, cut at 32 bytes as bcc's). So the time includes the system call's own work around the
VFS call (small), readv and writev are seen too (bcc's vfs_read misses them), their BYTES is what they
transferred rather than what was asked, and reads and writes the kernel makes itself are not seen.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc._tools import block, common, files

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool fileslower             # trace sync file I/O slower than 10 ms (default)
    rbcc tool fileslower 1           # trace sync file I/O slower than 1 ms
    rbcc tool fileslower -p 185      # trace PID 185 only
    rbcc tool fileslower -a 50       # include FIFOs, sockets, ..., slower than 50 ms
"""


BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/fs.h>

enum trace_mode {
    MODE_READ,
    MODE_WRITE
};

struct val_t {
    u32 sz;
    u32 name_len;
    u64 ts;
    char name[DNAME_LEN];
};

struct data_t {
    enum trace_mode mode;
    u32 pid;
    u32 sz;
    u64 delta_us;
    u32 name_len;
    char name[DNAME_LEN];
    char comm[TASK_COMM_LEN];
};

BPF_HASH(entryinfo, u32, struct val_t);
BPF_PERF_OUTPUT(events);

FILE_OF_FD

static __always_inline int rw_entry(int fd, u64 count, int is_read) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if (TGID_FILTER)
        return 0;
    u32 pid = id;
    struct file *file = file_of_fd(fd);
    if (!file)
        return 0;
    struct inode *inode = NULL;
    struct dentry *de = NULL;
    const struct file_operations *fop = NULL;
    bpf_probe_read_kernel(&inode, sizeof(inode), &file->f_inode);
    bpf_probe_read_kernel(&de, sizeof(de), &file->f_path.dentry);
    bpf_probe_read_kernel(&fop, sizeof(fop), &file->f_op);
    if (!inode || !de || !fop)
        return 0;
    // files without read_iter/write_iter, as bcc leaves them out
    void *iter = NULL;
    if (is_read)
        bpf_probe_read_kernel(&iter, sizeof(iter), &fop->read_iter);
    else
        bpf_probe_read_kernel(&iter, sizeof(iter), &fop->write_iter);
    if (!iter)
        return 0;
NAMED_FILE
    struct val_t val = {.sz = count, .name_len = d_name.len, .ts = bpf_ktime_get_ns()};
    bpf_probe_read_kernel(&val.name, sizeof(val.name), d_name.name);
    entryinfo.update(&pid, &val);
    return 0;
}

static __always_inline int rw_return(void *ctx, long ret, int mode, int use_ret) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id;
    struct val_t *valp = entryinfo.lookup(&pid);
    if (!valp)
        return 0;   // entered before we started, or filtered
    u64 delta_us = (bpf_ktime_get_ns() - valp->ts) / 1000;
    struct data_t data = {.mode = mode, .pid = pid, .delta_us = delta_us, .name_len = valp->name_len};
    data.sz = use_ret ? (ret > 0 ? ret : 0) : valp->sz;
    __builtin_memcpy(&data.name, valp->name, sizeof(data.name));
    entryinfo.delete(&pid);
    if (delta_us < MIN_US)
        return 0;
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_read) { return rw_entry(args->fd, args->count, 1); }
TRACEPOINT_PROBE(syscalls, sys_enter_pread64) { return rw_entry(args->fd, args->count, 1); }
TRACEPOINT_PROBE(syscalls, sys_enter_readv) { return rw_entry(args->fd, 0, 1); }
TRACEPOINT_PROBE(syscalls, sys_enter_write) { return rw_entry(args->fd, args->count, 0); }
TRACEPOINT_PROBE(syscalls, sys_enter_pwrite64) { return rw_entry(args->fd, args->count, 0); }
TRACEPOINT_PROBE(syscalls, sys_enter_writev) { return rw_entry(args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_read) { return rw_return(args, args->ret, MODE_READ, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pread64) { return rw_return(args, args->ret, MODE_READ, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_readv) { return rw_return(args, args->ret, MODE_READ, 1); }
TRACEPOINT_PROBE(syscalls, sys_exit_write) { return rw_return(args, args->ret, MODE_WRITE, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pwrite64) { return rw_return(args, args->ret, MODE_WRITE, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_writev) { return rw_return(args, args->ret, MODE_WRITE, 1); }
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "fileslower",
        "Trace slow synchronous file reads and writes\n\n"
        "Timed at the read/write/pread64/pwrite64/readv/writev system calls, not in vfs_read/vfs_write:\n"
        "readv/writev show the bytes transferred; the kernel's own reads and writes are not seen.",
        EXAMPLES,
    )
    p.add_argument("-p", "--pid", type=int, metavar="PID", dest="tgid", help="trace this PID only")
    files.add_all_files(p)
    p.add_argument(
        "min_ms",
        nargs="?",
        type=common.non_negative_int,
        default=10,
        help="minimum I/O duration to trace, in ms (default 10)",
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = (
        BPF_TEXT.replace("FILE_OF_FD", block.FILE_OF_FD)
        .replace("TGID_FILTER", common.pid_condition("tgid", args.tgid))
        .replace("MIN_US", str(args.min_ms * 1000))
    )
    return files.fill_named_file(text, args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("fileslower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("Tracing sync read/writes slower than %d ms" % args.min_ms)
        print("%-8s %-14s %-6s %1s %-7s %7s %s" % ("TIME(s)", "COMM", "TID", "D", "BYTES", "LAT(ms)", "FILENAME"))
        sys.stdout.flush()
        start = time.time()

        def print_event(cpu: int, data: Any, size: int) -> None:
            event = b["events"].event(data)
            print(
                "%-8.3f %-14.14s %-6s %1s %-7s %7.2f %s"
                % (
                    time.time() - start,
                    event.comm.decode("utf-8", "replace"),
                    event.pid,
                    "R" if event.mode == 0 else "W",
                    event.sz,
                    float(event.delta_us) / 1000,
                    files.shown_name(event.name, event.name_len),
                ),
                flush=True,
            )

        b["events"].open_perf_buffer(print_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
