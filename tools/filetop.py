#!/usr/bin/env python3
"""filetop: file reads and writes by process and file, top-style.

bcc counts calls of vfs_read and vfs_write (with kprobes) and the bytes asked for; here the read,
pread64, write and pwrite64 syscall tracepoints count the same calls where they enter the kernel, the
file found from the descriptor in the task's file table. Reads and writes the kernel makes itself
(nfsd, loop devices, exec) are not seen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common, files, rwtop

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool filetop            # file I/O top, 1 second refresh
    rbcc tool filetop -C         # don't clear the screen
    rbcc tool filetop -p 181     # PID 181 only
    rbcc tool filetop 5          # 5 second summaries
    rbcc tool filetop 5 10       # 5 second summaries, 10 times only
"""


BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/fs.h>

struct info_t {
    unsigned long inode;
    dev_t dev;
    dev_t rdev;
    u32 pid;
    u32 name_len;
    char comm[TASK_COMM_LEN];
    char name[DNAME_LEN];
    char type;
};

RW_COUNTS

BPF_HASH(counts, struct info_t, struct val_t);

FILE_OF_FD

static __always_inline int do_entry(int fd, u64 count, int is_read) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    if (TGID_FILTER)
        return 0;
    // the file behind the descriptor, from the task's table (what vfs_read is handed)
    struct file *file = file_of_fd(fd);
    if (!file)
        return 0;
    struct inode *inode = NULL;
    struct dentry *de = NULL;
    bpf_probe_read_kernel(&inode, sizeof(inode), &file->f_inode);
    bpf_probe_read_kernel(&de, sizeof(de), &file->f_path.dentry);
    if (!inode || !de)
        return 0;
NAMED_FILE
    struct info_t info = {.pid = (u32)id, .name_len = d_name.len};
    struct super_block *sb = NULL;
    bpf_probe_read_kernel(&info.inode, sizeof(info.inode), &inode->i_ino);
    bpf_probe_read_kernel(&info.rdev, sizeof(info.rdev), &inode->i_rdev);
    bpf_probe_read_kernel(&sb, sizeof(sb), &inode->i_sb);
    if (sb)
        bpf_probe_read_kernel(&info.dev, sizeof(info.dev), &sb->s_dev);
    bpf_get_current_comm(&info.comm, sizeof(info.comm));
    bpf_probe_read_kernel_str(&info.name, sizeof(info.name), d_name.name);
    info.type = S_ISREG(mode) ? 'R' : S_ISSOCK(mode) ? 'S' : 'O';
ADD_TO_COUNTS
}

RW_SYSCALLS
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("filetop", rwtop.DESCRIPTION, EXAMPLES)
    files.add_all_files(p)
    block.add_top_options(p)
    rwtop.add_sort_and_pid(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return files.fill_named_file(rwtop.fill(BPF_TEXT, args, "&info"), args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("filetop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        for rows in rwtop.screens(b, args):
            print(
                "%-7s %-16s %-6s %-6s %-7s %-7s %1s %s"
                % ("TID", "COMM", "READS", "WRITES", "R_Kb", "W_Kb", "T", "FILE")
            )
            for k, v in rows:
                print(
                    "%-7d %-16s %-6d %-6d %-7d %-7d %1s %s"
                    % (
                        k.pid,
                        k.comm.decode("utf-8", "replace"),
                        v.reads,
                        v.writes,
                        v.rbytes // 1024,
                        v.wbytes // 1024,
                        k.type.decode("utf-8", "replace"),
                        files.shown_name(k.name, k.name_len),
                    )
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
