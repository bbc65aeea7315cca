#!/usr/bin/env python3
"""dirtop: file reads and writes summarized by directory (the -d globs), top-style.

bcc counts calls of vfs_read and vfs_write (kprobes) and the bytes asked for, and walks the file's
dentry up its parents to find the directory it is under. Here the read, pread64, write and pwrite64
syscall tracepoints count the same calls where they enter the kernel, the file found from the
descriptor in the task's file table, and its dentry walked up the same way (50 levels at most, not
across mount points). A directory is matched by device and inode number (bcc: inode number only).
Reads and writes the kernel makes itself (nfsd, loop devices, exec) are not seen.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Callable, Sequence

from rbcc._tools import block, common, rwtop

__all__ = ["bpf_text", "build_parser", "directories", "main"]

EXAMPLES = """examples:
    rbcc tool dirtop -d '/hdfs/uuid/*/yarn'       # directory I/O top, 1 second refresh
    rbcc tool dirtop -d '/hdfs/uuid/*/yarn' -C    # don't clear the screen
    rbcc tool dirtop -d '/hdfs/uuid/*/yarn' 5     # 5 second summaries
    rbcc tool dirtop -d '/hdfs/uuid/*/yarn' 5 10  # 5 second summaries, 10 times only
    rbcc tool dirtop -d '/hdfs/uuid/*/yarn,/hdfs/uuid/*/data' # Running dirtop on two set of directories
"""

MAX_DIRS = 15  # bcc's limit, which keeps the walk small enough for the verifier
MAX_DEPTH = 50

BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/fs.h>

RW_COUNTS

// by the index of the directory (in the order printed when starting)
BPF_HASH(counts, u32, struct val_t);

FILE_OF_FD

// which of the directories this one is, or -1
static __always_inline int which_dir(struct dentry *de) {
    struct inode *inode = NULL;
    bpf_probe_read_kernel(&inode, sizeof(inode), &de->d_inode);
    if (!inode)
        return -1;
    unsigned long ino = 0;
    struct super_block *sb = NULL;
    dev_t dev = 0;
    bpf_probe_read_kernel(&ino, sizeof(ino), &inode->i_ino);
    bpf_probe_read_kernel(&sb, sizeof(sb), &inode->i_sb);
    if (sb)
        bpf_probe_read_kernel(&dev, sizeof(dev), &sb->s_dev);
    MATCHES
    return -1;
}

static __always_inline int do_entry(int fd, u64 count, int is_read) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (TGID_FILTER)
        return 0;
    struct file *file = file_of_fd(fd);
    if (!file)
        return 0;
    struct dentry *de = NULL;
    bpf_probe_read_kernel(&de, sizeof(de), &file->f_path.dentry);
    // the outermost of the directories the file is under, as bcc
    int found = -1;
    for (int i = 0; i < MAX_DEPTH && de; i++) {
        struct dentry *parent = NULL;
        bpf_probe_read_kernel(&parent, sizeof(parent), &de->d_parent);
        if (!parent || parent == de)
            break;   // the root of its mount
        de = parent;
        int dir = which_dir(de);
        if (dir >= 0)
            found = dir;
    }
    if (found < 0)
        return 0;
    u32 key = found;
ADD_TO_COUNTS
}

RW_SYSCALLS
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dirtop", rwtop.DESCRIPTION, EXAMPLES)
    block.add_top_options(p)
    rwtop.add_sort_and_pid(p)
    p.add_argument(
        "-d",
        "--root-directories",
        required=True,
        dest="rootdirs",
        help="select the directories to observe, separated by commas",
    )
    return p


def directories(rootdirs: str, say: Callable[[str], None] = print) -> list[tuple[str, int, int]]:
    """The directories the -d globs name (15 at most, each once): (path, kernel dev_t, inode)."""
    found: list[tuple[str, int, int]] = []
    seen: dict[tuple[int, int], str] = {}
    for pattern in rootdirs.split(","):
        for path in sorted(glob.glob(pattern, recursive=True)):
            if len(found) >= MAX_DIRS:
                say("%d directories limit reached" % MAX_DIRS)
                return found
            st = os.lstat(path)
            key = (block.mkdev(os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino)
            if key in seen:
                say(f"Skipping {path} as already considered")
                continue
            seen[key] = path
            found.append((path, *key))
            say(f"Considering {path} with inode_id {st.st_ino}")
    return found


def bpf_text(args: argparse.Namespace, dirs: Sequence[tuple[str, int, int]] | None = None) -> str:
    """The C for these options and directories (pure but for the glob of -d when ``dirs`` is None)."""
    if dirs is None:
        dirs = directories(args.rootdirs, say=lambda _: None)
    matches = "\n    ".join(
        f"if (ino == {ino} && dev == {dev}) return {i};  // {path}" for i, (path, dev, ino) in enumerate(dirs)
    )
    return rwtop.fill(BPF_TEXT, args, "&key").replace("MATCHES", matches).replace("MAX_DEPTH", str(MAX_DEPTH))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("dirtop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    said: list[str] = []
    dirs = directories(args.rootdirs, said.append)
    if not dirs:
        print("\n".join([*said, "Cannot find any valid directory"]))
        return 1
    b = common.load(args, bpf_text(args, dirs))
    if b is None:
        return 0
    # once loaded (compiling takes a while): the first line out says the counting has begun
    print("\n".join(said))
    with b:
        for rows in rwtop.screens(b, args):
            print("%-6s %-6s %-8s %-8s %s" % ("READS", "WRITES", "R_Kb", "W_Kb", "PATH"))
            for k, v in rows:
                print(
                    "%-6d %-6d %-8d %-8d %s" % (v.reads, v.writes, v.rbytes // 1024, v.wbytes // 1024, dirs[k.value][0])
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
