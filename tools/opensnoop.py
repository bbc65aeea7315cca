#!/usr/bin/env python3
"""opensnoop: trace open() syscalls (open, openat, openat2), with the file, the fd or the error.

Uses the syscall tracepoints (sys_enter_/sys_exit_ of open, openat, openat2) instead of bcc's kprobes
or fexit probes on the syscall functions: the same calls, seen at the same place. -F builds the full path
of a relative name from the caller's working directory, crossing mount points (bcc's walk stops at the
root of the working directory's file system); like bcc's, it ignores openat's directory fd.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from collections.abc import Sequence

from rbcc._tools import common, proc
from rbcc.containers import filter_by_containers
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool opensnoop                        # trace all open() syscalls
    rbcc tool opensnoop -T                     # include timestamps
    rbcc tool opensnoop -U                     # include UID
    rbcc tool opensnoop -x                     # only show failed opens
    rbcc tool opensnoop -p 181                 # only trace PID 181
    rbcc tool opensnoop -t 123                 # only trace TID 123
    rbcc tool opensnoop -u 1000                # only trace UID 1000
    rbcc tool opensnoop -d 10                  # trace for 10 seconds only
    rbcc tool opensnoop -n main                # only print process names containing "main"
    rbcc tool opensnoop -e                     # show extended fields
    rbcc tool opensnoop -f O_WRONLY -f O_RDWR  # only print calls for writing
    rbcc tool opensnoop -F                     # show full path for an open file with relative path
    rbcc tool opensnoop --cgroupmap mappath    # only trace cgroups in this BPF map
    rbcc tool opensnoop --mntnsmap mappath     # only trace mount namespaces in the map
"""

SYSCALLS = ("open", "openat", "openat2")

BPF_HEAD = r"""
#include <linux/sched.h>

#define EVENT_ENTRY 0
#define EVENT_END 1
#define MAX_ENTRIES 32

struct val_t {
    const char *fname;
    int flags;
};

struct data_t {
    u64 id;
    u64 ts;
    u32 uid;
    int ret;
    int type;
    int flags;
    char comm[TASK_COMM_LEN];
    char name[NAME_MAX];
};

BPF_HASH(infotmp, u64, struct val_t);
BPF_PERF_OUTPUT(events);

static __always_inline int enter(const char *filename, int flags) {
    TASK_IDS
    if (SKIP || FLAGS_SKIP || container_should_be_filtered())
        return 0;
    struct val_t val = {.fname = filename, .flags = flags};
    infotmp.update(&id, &val);
    return 0;
}
"""

# One event per path component of the working directory, leaf first, then the END event that carries
# the result: Python joins them. A mount's root is no component: the walk goes on from its mount point.
BPF_FULL_PATH = r"""
static __always_inline void submit(void *ctx, struct data_t *data) {
    if (data->name[0] != '/') {
        struct task_struct *task = (struct task_struct *)bpf_get_current_task();
        struct fs_struct *fs = BPF_CORE_READ(task, fs);
        struct dentry *dentry = BPF_CORE_READ(fs, pwd.dentry);
        struct vfsmount *vfsmnt = BPF_CORE_READ(fs, pwd.mnt);
        // rbcc reads offsetof()/container_of() as a kernel load; the builtin is left alone
        unsigned long mnt_offset = __builtin_offsetof(struct mount, mnt);
        struct mount *mnt = (struct mount *)((char *)vfsmnt - mnt_offset);
        data->type = EVENT_ENTRY;
        events.perf_submit(ctx, data, sizeof(*data));
        for (int i = 1; i < MAX_ENTRIES; i++) {
            if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
                struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
                if (parent == mnt)
                    break;
                dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
                mnt = parent;
                vfsmnt = &parent->mnt;
                continue;
            }
            bpf_probe_read_kernel_str(data->name, sizeof(data->name), BPF_CORE_READ(dentry, d_name.name));
            events.perf_submit(ctx, data, sizeof(*data));
            dentry = BPF_CORE_READ(dentry, d_parent);
        }
        data->name[0] = '/';
        data->name[1] = 0;
        events.perf_submit(ctx, data, sizeof(*data));
    }
    data->type = EVENT_END;
    events.perf_submit(ctx, data, sizeof(*data));
}
"""

BPF_SUBMIT = r"""
static __always_inline void submit(void *ctx, struct data_t *data) {
    data->type = EVENT_END;
    events.perf_submit(ctx, data, sizeof(*data));
}
"""

BPF_LEAVE = r"""
static __always_inline int leave(void *ctx, long ret) {
    u64 id = bpf_get_current_pid_tgid();
    struct val_t *valp = infotmp.lookup(&id);
    if (!valp)
        return 0;
    struct data_t data = {};
    data.id = id;
    data.ts = bpf_ktime_get_ns() / 1000;
    data.uid = (u32)bpf_get_current_uid_gid();
    data.ret = ret;
    data.flags = valp->flags;
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    bpf_probe_read_user_str(&data.name, sizeof(data.name), valp->fname);
    infotmp.delete(&id);
    submit(ctx, &data);
    return 0;
}
"""

ENTER = {
    "open": "return enter(args->filename, args->flags);",
    "openat": "return enter(args->filename, args->flags);",
    # openat2's flags are in a struct in user memory; a failed read leaves them 0
    "openat2": "struct open_how how = {};\n    bpf_probe_read_user(&how, sizeof(how), args->how);\n"
    "    return enter(args->filename, (int)how.flags);",
}


def open_flag(name: str) -> int:
    """An O_* flag's value by name (bcc's -f)."""
    if not name.startswith("O_") or not isinstance(getattr(os, name, None), int):
        raise argparse.ArgumentTypeError(f"Bad flag: {name}")
    return int(getattr(os, name))


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("opensnoop", "Trace open() syscalls", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("-x", "--failed", action="store_true", help="only show failed opens")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-t", "--tid", type=int, help="trace this TID only")
    common.add_containers(p)
    p.add_argument("-u", "--uid", type=int, help="trace this UID only")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-e", "--extended_fields", action="store_true", help="show extended fields")
    p.add_argument(
        "-f", "--flag_filter", action="append", type=open_flag, help="filter on flags argument (e.g., O_WRONLY)"
    )
    p.add_argument("-F", "--full-path", action="store_true", help="show full path for an open file with relative path")
    p.add_argument(
        "-b",
        "--buffer-pages",
        type=common.positive_int,
        default=64,
        help="size of the perf ring buffer (must be a power of two number of pages and defaults to 64)",
    )
    return p


def bpf_text(args: argparse.Namespace, syscalls: Sequence[str] = SYSCALLS) -> str:
    """The C for these options, probing ``syscalls`` (pure: no kernel needed)."""
    mask = 0
    for flag in args.flag_filter or []:
        mask |= flag
    head = (
        BPF_HEAD.replace("TASK_IDS", proc.TASK_IDS)
        .replace("FLAGS_SKIP", f"!(flags & {mask})" if args.flag_filter else "0")
        .replace("SKIP", proc.skip_condition(pid=args.pid, tid=args.tid, uid=args.uid))
    )
    text = filter_by_containers(args) + head + (BPF_FULL_PATH if args.full_path else BPF_SUBMIT) + BPF_LEAVE
    for name in syscalls:
        text += f"\nTRACEPOINT_PROBE(syscalls, sys_enter_{name}) {{\n    {ENTER[name]}\n}}\n"
        text += f"\nTRACEPOINT_PROBE(syscalls, sys_exit_{name}) {{\n    return leave(args, args->ret);\n}}\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("opensnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args, SYSCALLS if args.ebpf else proc.syscalls_present(SYSCALLS)))
    if b is None:
        return 0
    header = ""
    if args.timestamp:
        header += "%-14s" % "TIME(s)"
    if args.print_uid:
        header += "%-6s" % "UID"
    header += "%-6s %-16s %4s %3s " % ("TID" if args.tid is not None else "PID", "COMM", "FD", "ERR")
    if args.extended_fields:
        header += "%-9s" % "FLAGS"
    print(header + "PATH", flush=True)

    name = args.name.encode() if args.name else None
    initial_ts = 0
    components: dict[int, list[bytes]] = defaultdict(list)

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal initial_ts
        e = b["events"].event(data)
        if e.type != 1:
            components[e.id].append(e.name)
            return
        parts = components.pop(e.id, [])
        if not initial_ts:
            initial_ts = e.ts
        if args.failed and e.ret >= 0:
            return
        if name is not None and name not in e.comm:
            return
        fd, err = (e.ret, 0) if e.ret >= 0 else (-1, -e.ret)
        out = b""
        if args.timestamp:
            out += b"%-14.9f" % ((e.ts - initial_ts) / 1e6)
        if args.print_uid:
            out += b"%-6d" % e.uid
        out += b"%-6d %-16s %4d %3d " % (e.id & 0xFFFFFFFF if args.tid is not None else e.id >> 32, e.comm, fd, err)
        if args.extended_fields:
            out += b"%08o " % e.flags
        # under -F the END event's name is spent: the ENTRY events hold the name, then the directories
        path = os.path.join(*reversed(parts)) if parts else e.name
        printb(out + path)

    b["events"].open_perf_buffer(on_event, page_cnt=args.buffer_pages)
    with b:
        common.poll_events_for(b, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
