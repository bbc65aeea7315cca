"""What the file tools that see files at the system calls share (filegone, filelife, fileslower,
dirtop): bcc hooks vfs_unlink, vfs_rename, vfs_create, vfs_read, ... with kprobes and is handed the
dentry; here the system call tracepoints hand over a path as the caller spelled it, or a descriptor,
and the file behind a descriptor is read from the task's file table (block.FILE_OF_FD).

A path is resolved as far as BPF can without a lookup of its own: the directory it starts from (the
``dirfd`` of the *at() calls, else the current directory) is a dentry found through the task.
"""

from __future__ import annotations

import argparse

from . import block, common

# The longest path the tools read from the caller (a longer one is cut there).
PATH_LEN = 256

# AT_FDCWD and AT_REMOVEDIR are uapi macros, not in BTF.
START_DIR = (
    block.FILE_OF_FD
    + r"""
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200

// the directory a relative path given with ``dirfd`` starts from: the current one for AT_FDCWD
static __always_inline struct dentry *start_dir(int dirfd) {
    if (dirfd == AT_FDCWD) {
        struct task_struct *task = (struct task_struct *)bpf_get_current_task();
        return task->fs->pwd.dentry;
    }
    struct file *file = file_of_fd(dirfd);
    struct dentry *de = NULL;
    if (file)
        bpf_probe_read_kernel(&de, sizeof(de), &file->f_path.dentry);
    return de;
}
"""
)


def add_pid(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")


def pid_filter(args: argparse.Namespace) -> str:
    """C true for an event of a process -p leaves out (``pid`` is the tgid)."""
    return common.pid_condition("pid", args.pid)


def basename(path: bytes) -> str:
    """The last component of a path as the caller spelled it: the name bcc prints from the dentry."""
    text = path.decode("utf-8", "replace").rstrip("/")
    return text.rsplit("/", 1)[-1] or text or "/"
