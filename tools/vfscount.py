#!/usr/bin/env python3
"""vfscount: count the calls of VFS functions (vfs_read, vfs_write, vfs_open, ...) until Ctrl-C.

bcc counts every kernel function named vfs_* with kprobes. Here the system calls that reach each VFS
function are counted at their exit tracepoints (read and pread64 reach vfs_read, openat vfs_open, ...),
and printed under the function's name: only the functions a system call calls directly are listed,
a call that failed before it got there (a bad descriptor, a missing path) is not counted, and VFS
calls the kernel makes itself (nfsd, loop devices, exec, overlayfs) are not seen.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common

__all__ = ["VFS_SYSCALLS", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool vfscount        # count VFS calls until Ctrl-C
    rbcc tool vfscount 10     # count VFS calls for 10 seconds
"""

# The VFS function each system call calls (fs/read_write.c, fs/open.c, fs/namei.c, fs/stat.c, ...).
VFS_SYSCALLS = {
    "vfs_read": ("read", "pread64"),
    "vfs_write": ("write", "pwrite64"),
    "vfs_readv": ("readv", "preadv", "preadv2"),
    "vfs_writev": ("writev", "pwritev", "pwritev2"),
    "vfs_open": ("open", "openat", "openat2", "creat"),
    "vfs_fsync": ("fsync", "fdatasync"),
    "vfs_statx": ("newstat", "newlstat", "newfstatat", "statx"),
    "vfs_fstat": ("newfstat",),
    "vfs_llseek": ("lseek",),
    "vfs_unlink": ("unlink",),
    "vfs_rmdir": ("rmdir",),
    "vfs_mkdir": ("mkdir", "mkdirat"),
    "vfs_mknod": ("mknod", "mknodat"),
    "vfs_rename": ("rename", "renameat", "renameat2"),
    "vfs_link": ("link", "linkat"),
    "vfs_symlink": ("symlink", "symlinkat"),
    "vfs_readlink": ("readlink", "readlinkat"),
    "vfs_truncate": ("truncate",),
    "vfs_fallocate": ("fallocate",),
    "vfs_statfs": ("statfs", "fstatfs"),
    "vfs_getxattr": ("getxattr", "lgetxattr", "fgetxattr"),
    "vfs_setxattr": ("setxattr", "lsetxattr", "fsetxattr"),
    "vfs_listxattr": ("listxattr", "llistxattr", "flistxattr"),
    "vfs_removexattr": ("removexattr", "lremovexattr", "fremovexattr"),
    "vfs_copy_file_range": ("copy_file_range",),
    "vfs_fadvise": ("fadvise64",),
    "vfs_utimes": ("utimensat", "utime", "utimes", "futimesat"),
}
FUNCTIONS = tuple(VFS_SYSCALLS)

BPF_HEAD = r"""
// uapi values (macros, so not in BTF)
#define AT_REMOVEDIR 0x200
#define EBADF 9
#define ENOENT 2
#define ENOTDIR 20

BPF_ARRAY(counts, u64, NFUNCS);

// errors the system call returns before it calls the VFS: no such descriptor, no such path
static __always_inline int reached(long ret) {
    return ret != -EBADF && ret != -ENOENT && ret != -ENOTDIR;
}
"""

# unlinkat is unlink or rmdir by its flag, read at entry
UNLINKAT = r"""
BPF_HASH(unlinkat_dir, u32, u8);

int count_enter_unlinkat(struct tracepoint__syscalls__sys_enter_unlinkat *args) {
    u32 tid = bpf_get_current_pid_tgid();
    u8 dir = (args->flag & AT_REMOVEDIR) != 0;
    unlinkat_dir.update(&tid, &dir);
    return 0;
}

int count_unlinkat(struct tracepoint__syscalls__sys_exit_unlinkat *args) {
    u32 tid = bpf_get_current_pid_tgid();
    u8 *dir = unlinkat_dir.lookup(&tid);
    if (!dir)
        return 0;
    u32 slot = *dir ? RMDIR_SLOT : UNLINK_SLOT;
    unlinkat_dir.delete(&tid);
    if (reached(args->ret))
        counts.atomic_increment(slot);
    return 0;
}
"""

COUNT = r"""
int count_SYSCALL(struct tracepoint__syscalls__sys_exit_SYSCALL *args) {
    if (reached(args->ret))
        counts.atomic_increment(SLOT);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "vfscount",
        "Count VFS calls (counted at the system calls that make them, not by kprobes)",
        EXAMPLES,
    )
    p.add_argument("time", nargs="?", type=common.positive_int, help="seconds to count (default: until Ctrl-C)")
    return p


def syscalls() -> list[tuple[str, int]]:
    """(system call, slot of its VFS function) for every counted call but unlinkat."""
    return [(call, FUNCTIONS.index(fn)) for fn, calls in VFS_SYSCALLS.items() for call in calls]


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = BPF_HEAD.replace("NFUNCS", str(len(FUNCTIONS)))
    text += UNLINKAT.replace("RMDIR_SLOT", str(FUNCTIONS.index("vfs_rmdir"))).replace(
        "UNLINK_SLOT", str(FUNCTIONS.index("vfs_unlink"))
    )
    for call, slot in syscalls():
        text += COUNT.replace("SYSCALL", call).replace("SLOT", str(slot))
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("vfscount", lambda: run(args))


def _attach(b: BPF) -> None:
    # a system call this architecture lacks (open, creat, ... on arm64) has no tracepoint
    for call, _ in [*syscalls(), ("unlinkat", 0)]:
        if BPF.tracepoint_exists("syscalls", f"sys_exit_{call}"):
            b.attach_tracepoint(tp=f"syscalls:sys_exit_{call}", fn_name=f"count_{call}")
    b.attach_tracepoint(tp="syscalls:sys_enter_unlinkat", fn_name="count_enter_unlinkat")


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        _attach(b)
        print("Tracing... Ctrl-C to end.", flush=True)
        if args.time:
            try:
                time.sleep(args.time)
            except KeyboardInterrupt:
                pass
        else:
            common.until_interrupted()
        print("\n%-16s %-26s %8s" % ("ADDR", "FUNC", "COUNT"))
        counts = b["counts"]
        rows = [(fn, counts[i].value) for i, fn in enumerate(FUNCTIONS)]
        for fn, n in sorted((r for r in rows if r[1]), key=lambda r: r[1]):
            print("%-16x %-26s %8d" % (max(BPF.ksymname(fn), 0), fn, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
