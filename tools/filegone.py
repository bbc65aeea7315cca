#!/usr/bin/env python3
"""filegone: trace why files go away (deleted or renamed), with the process that did it.

bcc probes vfs_unlink, vfs_rmdir and vfs_rename with kprobes. Here the unlink, unlinkat, rmdir,
rename, renameat and renameat2 system calls are traced (their entry for the paths, their exit for
success): only a call that succeeded is shown (bcc shows the attempt), the name is the last
component of the path the caller gave (bcc's dentry name), and unlinks and renames the kernel makes
itself (nfsd, overlayfs, ...) are not seen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common, files

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool filegone           # trace all file gone events
    rbcc tool filegone -p 181    # only trace PID 181
"""

BPF_TEXT = r"""
#include <linux/sched.h>

#define AT_FDCWD -100

struct call_t {
    const char *from;
    const char *to;
    char action;
};

struct data_t {
    u32 pid;
    char action;
    char comm[TASK_COMM_LEN];
    char fname[PATH_LEN];
    char fname2[PATH_LEN];
};

BPF_HASH(calls, u32, struct call_t);
BPF_PERCPU_ARRAY(scratch, struct data_t, 1);
BPF_PERF_OUTPUT(events);

static __always_inline int enter(const char *from, const char *to, char action) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    if (PID_FILTER)
        return 0;
    u32 tid = id;
    struct call_t call = {.from = from, .to = to, .action = action};
    calls.update(&tid, &call);
    return 0;
}

static __always_inline int leave(void *ctx, long ret) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct call_t *call = calls.lookup(&tid);
    if (!call)
        return 0;
    u32 zero = 0;
    struct data_t *data = scratch.lookup(&zero);
    if (ret == 0 && data) {
        data->pid = id >> 32;
        data->action = call->action;
        bpf_get_current_comm(&data->comm, sizeof(data->comm));
        // the caller's strings are still in place: the call has just returned to it
        bpf_probe_read_user_str(&data->fname, sizeof(data->fname), call->from);
        data->fname2[0] = 0;
        if (call->to)
            bpf_probe_read_user_str(&data->fname2, sizeof(data->fname2), call->to);
        events.perf_submit(ctx, data, sizeof(*data));
    }
    calls.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_unlinkat) { return enter(args->pathname, NULL, 'D'); }
TRACEPOINT_PROBE(syscalls, sys_exit_unlinkat) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_renameat2) { return enter(args->oldname, args->newname, 'R'); }
TRACEPOINT_PROBE(syscalls, sys_exit_renameat2) { return leave(args, args->ret); }
"""

# the calls older architectures keep beside the *at ones (x86_64 has them; arm64 does not)
LEGACY = r"""
int enter_unlink(struct tracepoint__syscalls__sys_enter_unlink *args) { return enter(args->pathname, NULL, 'D'); }
int enter_rmdir(struct tracepoint__syscalls__sys_enter_rmdir *args) { return enter(args->pathname, NULL, 'D'); }
int enter_rename(struct tracepoint__syscalls__sys_enter_rename *args) {
    return enter(args->oldname, args->newname, 'R');
}
int enter_renameat(struct tracepoint__syscalls__sys_enter_renameat *args) {
    return enter(args->oldname, args->newname, 'R');
}
int leave_unlink(struct tracepoint__syscalls__sys_exit_unlink *args) { return leave(args, args->ret); }
int leave_rmdir(struct tracepoint__syscalls__sys_exit_rmdir *args) { return leave(args, args->ret); }
int leave_rename(struct tracepoint__syscalls__sys_exit_rename *args) { return leave(args, args->ret); }
int leave_renameat(struct tracepoint__syscalls__sys_exit_renameat *args) { return leave(args, args->ret); }
"""
LEGACY_CALLS = ("unlink", "rmdir", "rename", "renameat")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "filegone",
        "Trace why file gone (deleted or renamed)\n\n"
        "Traced at the unlink/rmdir/rename system calls, not in vfs_unlink/vfs_rename: only calls\n"
        "that succeeded are shown, and the kernel's own unlinks and renames are not seen.",
        EXAMPLES,
    )
    files.add_pid(p)
    return p


def bpf_text(args: argparse.Namespace, legacy: bool = True) -> str:
    """The C for these options (pure: no kernel needed); ``legacy`` adds unlink, rmdir, rename and
    renameat beside unlinkat and renameat2."""
    text = BPF_TEXT + (LEGACY if legacy else "")
    return text.replace("PID_FILTER", files.pid_filter(args)).replace("PATH_LEN", str(files.PATH_LEN))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("filegone", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from rbcc import BPF

    legacy = args.ebpf or BPF.tracepoint_exists("syscalls", "sys_enter_unlink")
    b = common.load(args, bpf_text(args, legacy))
    if b is None:
        return 0
    with b:
        if legacy:
            for call in LEGACY_CALLS:
                b.attach_tracepoint(tp=f"syscalls:sys_enter_{call}", fn_name=f"enter_{call}")
                b.attach_tracepoint(tp=f"syscalls:sys_exit_{call}", fn_name=f"leave_{call}")
        print("%-8s %-7s %-16s %6s %s" % ("TIME", "PID", "COMM", "ACTION", "FILE"), flush=True)

        def print_event(cpu: int, data: Any, size: int) -> None:
            event = b["events"].event(data)
            name = files.basename(event.fname)
            if event.action == b"R":
                action, name = "RENAME", "%s > %s" % (name, files.basename(event.fname2))
            else:
                action = "DELETE"
            comm = event.comm.decode("utf-8", "replace")
            print("%-8s %-7d %-16s %6s %s" % (common.strftime_now(), event.pid, comm, action, name), flush=True)

        b["events"].open_perf_buffer(print_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
