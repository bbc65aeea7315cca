"""What the file tools that see files at the system calls share (filegone, filelife, fileslower,
filetop, dirtop): bcc hooks vfs_unlink, vfs_rename, vfs_create, vfs_read, ... with kprobes and is handed the
dentry; here the system call tracepoints hand over a path as the caller spelled it, or a descriptor,
and the file behind a descriptor is read from the task's file table (block.FILE_OF_FD).

A path is resolved as far as BPF can without a lookup of its own: the directory it starts from (the
``dirfd`` of the *at() calls, else the current directory) is a dentry found through the task.
"""

from __future__ import annotations

import argparse
from typing import Any

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


# struct dentry's inline name: fileslower and filetop show a file's name cut there, as bcc's do
DNAME_INLINE_LEN = 32

# C for fileslower's and filetop's probes, given ``inode`` and ``de`` (the dentry) of the file: its
# ``mode`` and name (``d_name``), or return for a file without a name or one -a leaves out.
NAMED_FILE = r"""    umode_t mode = 0;
    bpf_probe_read_kernel(&mode, sizeof(mode), &inode->i_mode);
    struct qstr d_name = {};
    bpf_probe_read_kernel(&d_name, sizeof(d_name), &de->d_name);
    // skip I/O without a file name, and (without -a) to anything but regular files
    if (d_name.len == 0 || TYPE_FILTER)
        return 0;"""


def add_all_files(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-a", "--all-files", action="store_true", help="include non-regular file types (sockets, FIFOs, etc)"
    )


def fill_named_file(text: str, args: argparse.Namespace) -> str:
    """``text`` with NAMED_FILE (-a's filter in it) and DNAME_LEN, the size of the name it keeps."""
    named = NAMED_FILE.replace("TYPE_FILTER", "0" if args.all_files else "!S_ISREG(mode)")
    return text.replace("NAMED_FILE", named).replace("DNAME_LEN", str(DNAME_INLINE_LEN))


def shown_name(name: Any, name_len: int) -> str:
    """The name kept by NAMED_FILE's probe as bcc shows it: "..." at the end where it was cut."""
    text: str = name.decode("utf-8", "replace")
    return text[:-3] + "..." if name_len > DNAME_INLINE_LEN else text
