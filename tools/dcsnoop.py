#!/usr/bin/env python3
"""dcsnoop: trace directory entry cache (dcache) lookups that fail (with -a, every lookup).

As bcc, it sees each failed d_lookup (a kprobe for the name, a kretprobe for the result) and, with
-a, each path component lookup_fast is asked for (a kprobe, the name from its nameidata). The dcache
has no tracepoints, so a kernel without kprobes cannot run it: it says so in one line and exits with
status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc._tools import block, common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool dcsnoop           # trace failed dcache lookups
    rbcc tool dcsnoop -a        # trace all dcache lookups
"""

FAST_RE = r"^lookup_fast$|^lookup_fast\.constprop\.\d+$"

BPF_TEXT = r"""
#include <linux/fs.h>
#include <linux/sched.h>

#define MAX_FILE_LEN 64

enum lookup_type {
    LOOKUP_MISS,
    LOOKUP_REFERENCE,
};

struct entry_t {
    char name[MAX_FILE_LEN];
};

struct data_t {
    u32 pid;
    enum lookup_type type;
    char comm[TASK_COMM_LEN];
    char filename[MAX_FILE_LEN];
};

BPF_HASH(entrybypid, u32, struct entry_t);
BPF_PERF_OUTPUT(events);

static __always_inline void submit_event(struct pt_regs *ctx, const void *name, int type, u32 pid) {
    struct data_t data = {.pid = pid, .type = type};
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    bpf_probe_read_kernel_str(&data.filename, sizeof(data.filename), name);
    events.perf_submit(ctx, &data, sizeof(data));
}

// every component the fast walk looks up (-a): its name is the walk's last component
int trace_fast(struct pt_regs *ctx, struct nameidata *nd) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    submit_event(ctx, nd->last.name, LOOKUP_REFERENCE, pid);
    return 0;
}

int trace_d_lookup(struct pt_regs *ctx, const struct dentry *parent, const struct qstr *name) {
    u32 tid = bpf_get_current_pid_tgid();
    struct entry_t entry = {};
    const unsigned char *fname = name->name;
    if (fname)
        bpf_probe_read_kernel_str(&entry.name, sizeof(entry.name), fname);
    entrybypid.update(&tid, &entry);
    return 0;
}

int trace_d_lookup_return(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct entry_t *ep = entrybypid.lookup(&tid);
    if (!ep)
        return 0;   // entered before we started
    if (PT_REGS_RC(ctx) == 0)
        submit_event(ctx, ep->name, LOOKUP_MISS, id >> 32);
    entrybypid.delete(&tid);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dcsnoop", "Trace directory entry cache (dcache) lookups", EXAMPLES)
    p.add_argument("-a", "--all", action="store_true", help="trace all lookups (default is fails only)")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); -a only attaches trace_fast too."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("dcsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if not args.ebpf:
        block.need_kprobes(
            "dcsnoop",
            "d_lookup and lookup_fast",
            "the dcache has no tracepoints",
            "`rbcc tool opensnoop -x` and `rbcc tool statsnoop -x` show the paths that were not found",
        )
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        b.attach_kprobe(event="d_lookup", fn_name="trace_d_lookup")
        b.attach_kretprobe(event="d_lookup", fn_name="trace_d_lookup_return")
        if args.all:
            b.attach_kprobe(event_re=FAST_RE, fn_name="trace_fast")
        start = time.time()

        def print_event(cpu: int, data: Any, size: int) -> None:
            event = b["events"].event(data)
            print(
                "%-11.6f %-7d %-16s %1s %s"
                % (
                    time.time() - start,
                    event.pid,
                    event.comm.decode("utf-8", "replace"),
                    "M" if event.type == 0 else "R",
                    event.filename.decode("utf-8", "replace"),
                ),
                flush=True,
            )

        print("%-11s %-7s %-16s %1s %s" % ("TIME(s)", "PID", "COMM", "T", "FILE"), flush=True)
        b["events"].open_perf_buffer(print_event, page_cnt=64)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
