#!/usr/bin/env python3
"""filelife: trace the lifespan of short-lived files (created, then deleted while traced).

bcc probes vfs_create and vfs_unlink with kprobes and keys each file by its dentry. Here a file is born
at the exit of an open, openat, openat2 or creat that created it (the new descriptor's file has
FMODE_CREATED) or of a mknod/mknodat of a regular file, and dies at the exit of a successful unlink
or unlinkat. A file is keyed by the directory its name is in (a dentry, found through the new
descriptor, or the dirfd or current directory a bare name is relative to) and that name, and also,
when it was created through a path with a directory in it, by that path as spelled from where it
started. So a file deleted by its bare name is always matched; one deleted through a path with a
directory in it is matched only when created through that same path, from the same directory (or
the same absolute path); a file renamed in between is not matched (bcc's dentry follows it); names
are read up to 256 bytes. Creations and deletions the kernel makes itself are not seen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import block, common, files

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool filelife           # trace lifecycle of file(create->remove)
    rbcc tool filelife -p 181    # only trace PID 181
"""

BPF_TEXT = r"""
#include <linux/sched.h>
#include <linux/fs.h>

#define O_CREAT 0100
#define S_IFMT 00170000
#define S_IFREG 0100000

// a file by the directory (dentry) its path starts from, 0 for an absolute path, and that path
struct key_t {
    u64 dir;
    char name[PATH_LEN];
};

struct call_t {
    const char *path;
    int dirfd;
};

struct data_t {
    u32 pid;
    u64 delta;
    char comm[TASK_COMM_LEN];
    char fname[PATH_LEN];
};

BPF_HASH(calls, u32, struct call_t);
BPF_TABLE("lru_hash", struct key_t, u64, births, 10240);
BPF_HASH(dying, u32, struct key_t);
BPF_PERCPU_ARRAY(scratch, struct key_t, 1);
BPF_PERCPU_ARRAY(out, struct data_t, 1);
BPF_PERF_OUTPUT(events);

START_DIR

static __always_inline int skip(void) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    return PID_FILTER;
}

static __always_inline struct key_t *scratch_key(void) {
    u32 zero = 0;
    return scratch.lookup(&zero);
}

// the key of ``path`` from ``dirfd``; returns whether the path has a directory in it
static __always_inline int path_key(struct key_t *k, const char *path, int dirfd) {
    __builtin_memset(k, 0, sizeof(*k));
    bpf_probe_read_user_str(&k->name, sizeof(k->name), path);
    int slash = 0;
    for (int i = 0; i < PATH_LEN; i++) {
        char c = k->name[i];
        if (c == 0)
            break;
        if (c == '/') {
            slash = 1;
            break;
        }
    }
    k->dir = k->name[0] == '/' ? 0 : (u64)start_dir(dirfd);
    return slash;
}

static __always_inline int enter_create(const char *path, int dirfd) {
    if (skip())
        return 0;
    u32 tid = bpf_get_current_pid_tgid();
    struct call_t call = {.path = path, .dirfd = dirfd};
    calls.update(&tid, &call);
    return 0;
}

// the created file by its path as spelled from where it started and, through its dentry (NULL for a
// mknod), by its directory and name: the same key for a bare name, two when the path has a directory
static __always_inline void born(struct dentry *de) {
    u32 tid = bpf_get_current_pid_tgid();
    struct call_t *call = calls.lookup(&tid);
    struct key_t *k = scratch_key();
    if (!call || !k)
        return;
    u64 now = bpf_ktime_get_ns();
    if (path_key(k, call->path, call->dirfd) && de) {
        births.update(k, &now);
        __builtin_memset(k, 0, sizeof(*k));
        struct dentry *parent = NULL;
        bpf_probe_read_kernel(&parent, sizeof(parent), &de->d_parent);
        k->dir = (u64)parent;
        struct qstr d_name = {};
        bpf_probe_read_kernel(&d_name, sizeof(d_name), &de->d_name);
        bpf_probe_read_kernel_str(&k->name, sizeof(k->name), d_name.name);
    }
    births.update(k, &now);
}

static __always_inline int opened(long ret) {
    u32 tid = bpf_get_current_pid_tgid();
    if (ret >= 0) {
        struct file *file = file_of_fd(ret);
        fmode_t mode = 0;
        struct dentry *de = NULL;
        if (file && !bpf_probe_read_kernel(&mode, sizeof(mode), &file->f_mode) && (mode & FMODE_CREATED_BIT)) {
            bpf_probe_read_kernel(&de, sizeof(de), &file->f_path.dentry);
            born(de);
        }
    }
    calls.delete(&tid);
    return 0;
}

static __always_inline int made(long ret) {
    u32 tid = bpf_get_current_pid_tgid();
    if (ret == 0)
        born(NULL);
    calls.delete(&tid);
    return 0;
}

static __always_inline int unlinking(const char *path, int dirfd) {
    struct key_t *k = scratch_key();
    if (skip() || !k)
        return 0;
    path_key(k, path, dirfd);
    if (births.lookup(k)) {
        u32 tid = bpf_get_current_pid_tgid();
        dying.update(&tid, k);
    }
    return 0;
}

static __always_inline int unlinked(void *ctx, long ret) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct key_t *k = dying.lookup(&tid);
    if (!k)
        return 0;
    u64 *birth = births.lookup(k);
    u32 zero = 0;
    struct data_t *data = out.lookup(&zero);
    if (ret == 0 && birth && data) {
        data->pid = id >> 32;
        data->delta = bpf_ktime_get_ns() - *birth;
        bpf_get_current_comm(&data->comm, sizeof(data->comm));
        __builtin_memcpy(&data->fname, &k->name, sizeof(data->fname));
        events.perf_submit(ctx, data, sizeof(*data));
        births.delete(k);
    }
    dying.delete(&tid);
    return 0;
}

int enter_openat(struct tracepoint__syscalls__sys_enter_openat *args) {
    return (args->flags & O_CREAT) ? enter_create(args->filename, args->dfd) : 0;
}
int enter_openat2(struct tracepoint__syscalls__sys_enter_openat2 *args) {
    u64 flags = 0;
    bpf_probe_read_user(&flags, sizeof(flags), args->how);  // struct open_how starts with its flags
    return (flags & O_CREAT) ? enter_create(args->filename, args->dfd) : 0;
}
int enter_open(struct tracepoint__syscalls__sys_enter_open *args) {
    return (args->flags & O_CREAT) ? enter_create(args->filename, AT_FDCWD) : 0;
}
int enter_creat(struct tracepoint__syscalls__sys_enter_creat *args) {
    return enter_create(args->pathname, AT_FDCWD);
}
int enter_mknodat(struct tracepoint__syscalls__sys_enter_mknodat *args) {
    u32 type = args->mode & S_IFMT;
    return (type == S_IFREG || type == 0) ? enter_create(args->filename, args->dfd) : 0;
}
int enter_mknod(struct tracepoint__syscalls__sys_enter_mknod *args) {
    u32 type = args->mode & S_IFMT;
    return (type == S_IFREG || type == 0) ? enter_create(args->filename, AT_FDCWD) : 0;
}
int leave_openat(struct tracepoint__syscalls__sys_exit_openat *args) { return opened(args->ret); }
int leave_openat2(struct tracepoint__syscalls__sys_exit_openat2 *args) { return opened(args->ret); }
int leave_open(struct tracepoint__syscalls__sys_exit_open *args) { return opened(args->ret); }
int leave_creat(struct tracepoint__syscalls__sys_exit_creat *args) { return opened(args->ret); }
int leave_mknodat(struct tracepoint__syscalls__sys_exit_mknodat *args) { return made(args->ret); }
int leave_mknod(struct tracepoint__syscalls__sys_exit_mknod *args) { return made(args->ret); }

int enter_unlinkat(struct tracepoint__syscalls__sys_enter_unlinkat *args) {
    return (args->flag & AT_REMOVEDIR) ? 0 : unlinking(args->pathname, args->dfd);
}
int enter_unlink(struct tracepoint__syscalls__sys_enter_unlink *args) {
    return unlinking(args->pathname, AT_FDCWD);
}
int leave_unlinkat(struct tracepoint__syscalls__sys_exit_unlinkat *args) { return unlinked(args, args->ret); }
int leave_unlink(struct tracepoint__syscalls__sys_exit_unlink *args) { return unlinked(args, args->ret); }
"""

# what the tool traces; those of them this architecture lacks (open, creat, mknod, unlink on arm64)
# are left out at attach time
CALLS = ("openat", "openat2", "open", "creat", "mknodat", "mknod", "unlinkat", "unlink")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "filelife",
        "Trace lifecycle of file\n\n"
        "Traced at the open/creat/mknod and unlink system calls, not in vfs_create/vfs_unlink. A file\n"
        "is matched by its directory and name: one deleted by a bare name always; one deleted through\n"
        "a path with a directory in it only if created through that same path from the same directory\n"
        "(or the same absolute path); a file renamed in between is not matched; names are read up to\n"
        "256 bytes; files the kernel creates or deletes itself are not seen.",
        EXAMPLES,
    )
    files.add_pid(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("START_DIR", files.START_DIR)
        .replace("PID_FILTER", files.pid_filter(args))
        .replace("PATH_LEN", str(files.PATH_LEN))
        .replace("FMODE_CREATED_BIT", "0x%x" % block.FMODE_CREATED)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("filelife", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        for call in CALLS:
            if BPF.tracepoint_exists("syscalls", f"sys_enter_{call}"):
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{call}", fn_name=f"enter_{call}")
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{call}", fn_name=f"leave_{call}")
        print("%-8s %-7s %-16s %-7s %s" % ("TIME", "PID", "COMM", "AGE(s)", "FILE"), flush=True)

        def print_event(cpu: int, data: Any, size: int) -> None:
            event = b["events"].event(data)
            comm = event.comm.decode("utf-8", "replace")
            print(
                "%-8s %-7d %-16s %-7.2f %s"
                % (common.strftime_now(), event.pid, comm, float(event.delta) / 1e9, files.basename(event.fname)),
                flush=True,
            )

        b["events"].open_perf_buffer(print_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
