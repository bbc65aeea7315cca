#!/usr/bin/env python3
"""mountsnoop: trace mount() and umount() syscalls, with their arguments, flags and result.

Uses the syscall tracepoints (sys_enter_/sys_exit_ of mount and umount) instead of bcc's kprobes on
the syscall functions. As the bcc version this follows, the new mount API (fsopen(), fsmount(),
move_mount(), which util-linux's mount(8) uses where the kernel has it) is not shown.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common
from rbcc.containers import filter_by_containers

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool mountsnoop                      # trace mount() and umount() calls
    rbcc tool mountsnoop -P                   # also show the parent process
    rbcc tool mountsnoop --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool mountsnoop --mntnsmap mappath   # only trace mount namespaces in the map
"""

# One event for the call (task, namespace, flags), one per string argument, one for the result: each
# string gets the whole buffer. The event is built in a per-CPU slot, as it is too big for the stack.
BPF_TEXT = r"""
#include <linux/sched.h>

#define MAX_STR_LEN 412

EVENT_TYPES

struct data_t {
    u32 type;
    u32 pid;
    u32 tgid;
    u32 mnt_ns;
    u32 ppid;
    int retval;
    u64 flags;
    char comm[TASK_COMM_LEN];
    char pcomm[TASK_COMM_LEN];
    char str[MAX_STR_LEN];
};

BPF_PERCPU_ARRAY(scratch, struct data_t, 1);
BPF_PERF_OUTPUT(events);

static __always_inline struct data_t *event_for(u32 type) {
    u32 zero = 0;
    struct data_t *event = scratch.lookup(&zero);
    if (!event)
        return NULL;
    u64 id = bpf_get_current_pid_tgid();
    event->type = type;
    event->pid = (u32)id;
    event->tgid = id >> 32;
    return event;
}

static __always_inline void submit_call(void *ctx, u32 type, u64 flags) {
    struct data_t *event = event_for(type);
    if (!event)
        return;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    event->flags = flags;
    event->ppid = BPF_CORE_READ(task, real_parent, tgid);
    event->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
    bpf_get_current_comm(&event->comm, sizeof(event->comm));
    bpf_probe_read_kernel_str(&event->pcomm, sizeof(event->pcomm), BPF_CORE_READ(task, real_parent, comm));
    events.perf_submit(ctx, event, sizeof(*event));
}

static __always_inline void submit_str(void *ctx, u32 type, const char *str) {
    struct data_t *event = event_for(type);
    if (!event)
        return;
    // a NULL or unreadable argument (remount's source) shows as ""
    if (bpf_probe_read_user_str(&event->str, sizeof(event->str), str) < 0)
        event->str[0] = 0;
    events.perf_submit(ctx, event, sizeof(*event));
}

static __always_inline void submit_ret(void *ctx, u32 type, int ret) {
    struct data_t *event = event_for(type);
    if (!event)
        return;
    event->retval = ret;
    events.perf_submit(ctx, event, sizeof(*event));
}

TRACEPOINT_PROBE(syscalls, sys_enter_mount) {
    if (container_should_be_filtered())
        return 0;
    submit_call(args, EVENT_MOUNT, args->flags);
    submit_str(args, EVENT_MOUNT_SOURCE, args->dev_name);
    submit_str(args, EVENT_MOUNT_TARGET, args->dir_name);
    submit_str(args, EVENT_MOUNT_TYPE, args->type);
    submit_str(args, EVENT_MOUNT_DATA, args->data);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_mount) {
    submit_ret(args, EVENT_MOUNT_RET, args->ret);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_umount) {
    if (container_should_be_filtered())
        return 0;
    submit_call(args, EVENT_UMOUNT, args->flags);
    submit_str(args, EVENT_UMOUNT_TARGET, args->name);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_umount) {
    submit_ret(args, EVENT_UMOUNT_RET, args->ret);
    return 0;
}
"""

# The event types, numbered alike in the C (an enum made from this list) and here.
EVENT_TYPE_NAMES = (
    "EVENT_MOUNT",
    "EVENT_MOUNT_SOURCE",
    "EVENT_MOUNT_TARGET",
    "EVENT_MOUNT_TYPE",
    "EVENT_MOUNT_DATA",
    "EVENT_MOUNT_RET",
    "EVENT_UMOUNT",
    "EVENT_UMOUNT_TARGET",
    "EVENT_UMOUNT_RET",
)
(
    EVENT_MOUNT,
    EVENT_MOUNT_SOURCE,
    EVENT_MOUNT_TARGET,
    EVENT_MOUNT_TYPE,
    EVENT_MOUNT_DATA,
    EVENT_MOUNT_RET,
    EVENT_UMOUNT,
    EVENT_UMOUNT_TARGET,
    EVENT_UMOUNT_RET,
) = range(len(EVENT_TYPE_NAMES))
STRING_FIELDS = {
    EVENT_MOUNT_SOURCE: "source",
    EVENT_MOUNT_TARGET: "target",
    EVENT_MOUNT_TYPE: "type",
    EVENT_MOUNT_DATA: "data",
    EVENT_UMOUNT_TARGET: "target",
}

# <sys/mount.h>
MS_MGC_VAL = 0xC0ED0000
MS_MGC_MSK = 0xFFFF0000
MOUNT_FLAGS = [
    ("MS_RDONLY", 1),
    ("MS_NOSUID", 2),
    ("MS_NODEV", 4),
    ("MS_NOEXEC", 8),
    ("MS_SYNCHRONOUS", 16),
    ("MS_REMOUNT", 32),
    ("MS_MANDLOCK", 64),
    ("MS_DIRSYNC", 128),
    ("MS_NOATIME", 1024),
    ("MS_NODIRATIME", 2048),
    ("MS_BIND", 4096),
    ("MS_MOVE", 8192),
    ("MS_REC", 16384),
    ("MS_SILENT", 32768),
    ("MS_POSIXACL", 1 << 16),
    ("MS_UNBINDABLE", 1 << 17),
    ("MS_PRIVATE", 1 << 18),
    ("MS_SLAVE", 1 << 19),
    ("MS_SHARED", 1 << 20),
    ("MS_RELATIME", 1 << 21),
    ("MS_KERNMOUNT", 1 << 22),
    ("MS_I_VERSION", 1 << 23),
    ("MS_STRICTATIME", 1 << 24),
    ("MS_LAZYTIME", 1 << 25),
    ("MS_ACTIVE", 1 << 30),
    ("MS_NOUSER", 1 << 31),
]
UMOUNT_FLAGS = [("MNT_FORCE", 1), ("MNT_DETACH", 2), ("MNT_EXPIRE", 4), ("UMOUNT_NOFOLLOW", 8)]


def _flag_names(flags: int, known: list[tuple[str, int]]) -> list[str]:
    names = []
    for name, bit in known:
        if flags & bit:
            names.append(name)
        flags &= ~bit
    # bits with no name, or no bits at all, show as hex
    if flags or not names:
        names.append(f"0x{flags:x}")
    return names


def mount_flags(flags: int) -> str:
    """bcc's rendering of mount()'s flags: MS_ names joined by |, the old magic number as MS_MGC_VAL."""
    names = []
    if flags & MS_MGC_MSK == MS_MGC_VAL:
        flags &= ~MS_MGC_MSK
        names.append("MS_MGC_VAL")
    return "|".join(names + _flag_names(flags, MOUNT_FLAGS))


def umount_flags(flags: int) -> str:
    return "|".join(_flag_names(flags, UMOUNT_FLAGS))


def result(retval: int) -> str:
    """0, or the error's name as -ENAME (the number if it has none)."""
    if retval < 0 and -retval in errno.errorcode:
        return "-" + errno.errorcode[-retval]
    return str(retval)


_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}


def quoted(raw: bytes) -> str:
    """A string argument in double quotes, C escapes for control and non-ASCII bytes."""
    return '"' + "".join(_ESCAPES.get(c) or (chr(c) if 0x20 <= c <= 0x7E else f"\\x{c:02x}") for c in raw) + '"'


def call_text(call: dict[str, Any], retval: int) -> str:
    if call["kind"] == EVENT_MOUNT:
        args = [quoted(call.get(k, b"")) for k in ("source", "target", "type")]
        args.append(mount_flags(call["flags"]))
        args.append(quoted(call.get("data", b"")))
        return "mount(%s) = %s" % (", ".join(args), result(retval))
    return "umount(%s, %s) = %s" % (quoted(call.get("target", b"")), umount_flags(call["flags"]), result(retval))


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("mountsnoop", "trace mount() and umount() syscalls", EXAMPLES)
    p.add_argument("-P", "--parent_process", action="store_true", help="also snoop the parent process")
    common.add_containers(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    enum = "enum event_type {" + ", ".join(EVENT_TYPE_NAMES) + "};"
    return filter_by_containers(args) + BPF_TEXT.replace("EVENT_TYPES", enum, 1)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("mountsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    if args.parent_process:
        print(
            "{:16} {:<7} {:<7} {:16} {:<7} {:<11} {}".format("COMM", "PID", "TID", "PCOMM", "PPID", "MNT_NS", "CALL"),
            flush=True,
        )
    else:
        print("{:16} {:<7} {:<7} {:<11} {}".format("COMM", "PID", "TID", "MNT_NS", "CALL"), flush=True)
    calls: dict[int, dict[str, Any]] = {}

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        if e.type in (EVENT_MOUNT, EVENT_UMOUNT):
            calls[e.pid] = {
                "kind": e.type,
                "tgid": e.tgid,
                "mnt_ns": e.mnt_ns,
                "comm": e.comm.decode("utf-8", "replace"),
                "pcomm": e.pcomm.decode("utf-8", "replace"),
                "ppid": e.ppid,
                "flags": e.flags,
            }
            return
        call = calls.get(e.pid)
        if call is None:  # its first event was lost, or it began before the tool
            return
        if e.type in STRING_FIELDS:
            call[STRING_FIELDS[e.type]] = e.str
            return
        del calls[e.pid]
        text = call_text(call, e.retval)
        if args.parent_process:
            line = "{:16} {:<7} {:<7} {:16} {:<7} {:<11} {}".format(
                call["comm"], call["tgid"], e.pid, call["pcomm"], call["ppid"], call["mnt_ns"], text
            )
        else:
            line = "{:16} {:<7} {:<7} {:<11} {}".format(call["comm"], call["tgid"], e.pid, call["mnt_ns"], text)
        print(line, flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
