#!/usr/bin/env python3
"""statsnoop: trace stat() syscalls (stat, lstat, fstatat, statx, statfs), with the path and result.

Uses the syscall tracepoints (sys_enter_/sys_exit_) instead of bcc's kprobes on the syscall functions.
Besides bcc's stat, statx, statfs, newstat and newlstat it traces newfstatat, the call glibc's stat(),
lstat() and fstat() make on current systems (fstat's, by fd, show an empty path), as libbpf-tools'
statsnoop does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, proc

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool statsnoop           # trace all stat() syscalls
    rbcc tool statsnoop -t        # include timestamps
    rbcc tool statsnoop -x        # only show failed stats
    rbcc tool statsnoop -p 181    # only trace PID 181
"""

SYSCALLS = ("stat", "statx", "statfs", "newstat", "newlstat", "newfstatat")
# the tracepoint field that holds the path, where it is not "filename"
PATH_FIELD = {"statfs": "pathname"}

BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u32 pid;
    u64 ts_ns;
    int ret;
    char comm[TASK_COMM_LEN];
    char fname[NAME_MAX];
};

BPF_HASH(infotmp, u32, const char *);
BPF_PERF_OUTPUT(events);

static __always_inline int enter(const char *filename) {
    TASK_IDS
    if (SKIP)
        return 0;
    infotmp.update(&tid, &filename);
    return 0;
}

static __always_inline int leave(void *ctx, long ret) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    const char **fname = infotmp.lookup(&tid);
    if (!fname)
        return 0;
    struct data_t data = {.pid = bpf_get_current_pid_tgid() >> 32};
    bpf_probe_read_user_str(&data.fname, sizeof(data.fname), *fname);
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    data.ts_ns = bpf_ktime_get_ns();
    data.ret = ret;
    infotmp.delete(&tid);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("statsnoop", "Trace stat() syscalls", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--failed", action="store_true", help="only show failed stats")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    return p


def bpf_text(args: argparse.Namespace, syscalls: Sequence[str] = SYSCALLS) -> str:
    """The C for these options, probing ``syscalls`` (pure: no kernel needed)."""
    text = BPF_TEXT.replace("TASK_IDS", proc.TASK_IDS).replace("SKIP", proc.skip_condition(pid=args.pid))
    for name in syscalls:
        field = PATH_FIELD.get(name, "filename")
        text += f"\nTRACEPOINT_PROBE(syscalls, sys_enter_{name}) {{\n    return enter(args->{field});\n}}\n"
        text += f"\nTRACEPOINT_PROBE(syscalls, sys_exit_{name}) {{\n    return leave(args, args->ret);\n}}\n"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("statsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args, SYSCALLS if args.ebpf else proc.syscalls_present(SYSCALLS)))
    if b is None:
        return 0
    header = "%-14s" % "TIME(s)" if args.timestamp else ""
    print(header + "%-7s %-16s %4s %3s %s" % ("PID", "COMM", "FD", "ERR", "PATH"), flush=True)
    start_ts = 0

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal start_ts
        e = b["events"].event(data)
        if e.ret >= 0:
            if args.failed:
                return
            fd, err = e.ret, 0
        else:
            fd, err = -1, -e.ret
        if not start_ts:
            start_ts = e.ts_ns
        out = "%-14.9f" % ((e.ts_ns - start_ts) / 1e9) if args.timestamp else ""
        comm = e.comm.decode("utf-8", "replace")
        out += "%-7d %-16s %4d %3d %s" % (e.pid, comm, fd, err, e.fname.decode("utf-8", "replace"))
        print(out, flush=True)

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
