#!/usr/bin/env python3
"""vfsstat: count some VFS calls (reads, writes, fsyncs, opens, creates) per second.

bcc counts calls of vfs_read, vfs_write, vfs_fsync_range, vfs_open and vfs_create with kprobes or
fentry. Here the syscall tracepoints count them where they come from: successful read, readv,
pread64, preadv, preadv2 (READ), their write twins (WRITE), fsync and fdatasync (FSYNC), open,
openat, openat2, creat (OPEN), and of those the opens that created their file (CREATE, from the open
file's FMODE_CREATED). Kernel-internal VFS calls (by nfsd, loop devices, exec, ...) are not seen,
and a create by mknod() is not counted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common
from rbcc.export import Counter, Label, Program

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool vfsstat             # count some VFS calls per second
    rbcc tool vfsstat -p 185      # trace PID 185 only
    rbcc tool vfsstat 2 5         # print 2 second summaries, 5 times
"""

STATS = ("READ", "WRITE", "FSYNC", "OPEN", "CREATE")  # array indexes 1..5, as bcc's
SYSCALLS = {
    "READ": ("read", "readv", "pread64", "preadv", "preadv2"),
    "WRITE": ("write", "writev", "pwrite64", "pwritev", "pwritev2"),
    "FSYNC": ("fsync", "fdatasync"),
    "OPEN": ("open", "openat", "openat2", "creat"),
}

BPF_HEAD = r"""
#include <linux/sched.h>
#include <linux/fs.h>

enum stat_types { S_READ = 1, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_MAXSTAT };

BPF_ARRAY(stats, u64, S_MAXSTAT);

static __always_inline int skip(void) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    return PID_FILTER;
}
"""

COUNT = r"""
TRACEPOINT_PROBE(syscalls, sys_exit_SYSCALL) {
    if (args->ret < 0 || skip())
        return 0;
    stats.atomic_increment(S_STAT);
    return 0;
}
"""

OPEN = r"""
TRACEPOINT_PROBE(syscalls, sys_exit_SYSCALL) {
    if (args->ret < 0 || skip())
        return 0;
    stats.atomic_increment(S_OPEN);
    struct file *file = file_of_fd(args->ret);
    // read by hand: rbcc's rewriter does not take a pointer returned by a function for kernel memory
    fmode_t mode = 0;
    if (file && !bpf_probe_read_kernel(&mode, sizeof(mode), &file->f_mode) && (mode & FMODE_CREATED_BIT))
        stats.atomic_increment(S_CREATE);
    return 0;
}
"""


DESCRIPTION = (
    "Count some VFS calls.\n\n"
    "Counted at the syscalls (read*, write*, fsync, fdatasync, open*, creat), not in the VFS:\n"
    "the kernel's own VFS calls are not seen; CREATE counts opens that created their file."
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("vfsstat", DESCRIPTION, EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("interval", nargs="?", type=common.positive_int, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = BPF_HEAD.replace("PID_FILTER", common.pid_condition("pid", args.pid)) + block.FILE_OF_FD
    for stat, calls in SYSCALLS.items():
        for call in calls:
            probe = OPEN if stat == "OPEN" else COUNT.replace("S_STAT", f"S_{stat}")
            text += probe.replace("SYSCALL", call)
    return text.replace("FMODE_CREATED_BIT", "0x%x" % block.FMODE_CREATED)


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool vfsstat``: VFS calls by operation (read, write, fsync, open, create)."""
    op = Label("op", "", "map", {"values": {i: stat.lower() for i, stat in enumerate(STATS, 1)}})
    calls = Counter("stats", "rbcc_vfsstat_calls", "VFS calls, counted at their syscalls", (op,))
    return Program("vfsstat", bpf_text(args), metrics=(calls,))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("vfsstat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    print("%-8s  " % "TIME" + "".join(" %8s" % (s + "/s") for s in STATS), flush=True)
    stats = b["stats"]
    with b:
        for last in common.intervals(args.interval, args.count):
            values = [stats[i].value // args.interval for i in range(1, len(STATS) + 1)]
            print("%-8s: " % common.strftime_now() + "".join(" %8d" % v for v in values))
            stats.clear()
            sys.stdout.flush()
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
