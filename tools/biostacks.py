#!/usr/bin/env python3
"""biostacks: block I/O latency as histograms, one per kernel stack that made the requests.

libbpf-tools hooks blk_account_io_start and blk_account_io_done with fentry. Here the tracepoints of
the same moments are used in their raw form (handed the request): block:block_io_start (kernels
before 6.5 lack it; block:block_rq_insert, where the request enters a queue, usually still in the
submitting task, stands in) takes the kernel stack and the task, and block:block_rq_complete ends the
latency. The stack is that of the tracepoint, so it starts with the block layer's own frames
(blk_account_io_start or the insert), then the path that made the request.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tables.hist import print_log2_hist
from rbcc._tools import block, common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool biostacks              # trace block I/O with init stacks.
    rbcc tool biostacks 1            # trace for 1 seconds only
    rbcc tool biostacks -d sdc       # trace sdc only
"""

BPF_TEXT = r"""
#include <linux/blk-mq.h>
#include <linux/sched.h>

struct who_t {
    u32 pid;
    int stack_id;
    u32 major;
    u32 minor;
    char comm[TASK_COMM_LEN];
};

struct start_t {
    u64 ts;
    struct who_t who;
};

struct hist_key_t {
    struct who_t who;
    u64 slot;
};

BPF_HASH(starts, struct request *, struct start_t, 10240);
BPF_STACK_TRACE(stacks, 2048);
BPF_HISTOGRAM(dist, struct hist_key_t, 4096);

// the request is made: who made it, and the kernel stack that did
int trace_start(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    DISK_FILTER
    struct start_t start = {.ts = bpf_ktime_get_ns()};
    start.who.pid = bpf_get_current_pid_tgid() >> 32;
    start.who.stack_id = stacks.get_stackid(ctx, 0);
    struct gendisk *disk = rq->q->disk;
    if (disk) {
        start.who.major = disk->major;
        start.who.minor = disk->first_minor;
    }
    bpf_get_current_comm(&start.who.comm, sizeof(start.who.comm));
    starts.update(&rq, &start);
    return 0;
}

int trace_done(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    struct start_t *start = starts.lookup(&rq);
    if (!start)
        return 0;   // made before we started, or on another disk
    u64 delta = (bpf_ktime_get_ns() - start->ts) / UNIT;
    struct hist_key_t key = {.who = start->who, .slot = bpf_log2l(delta)};
    dist.atomic_increment(key);
    starts.delete(&rq);
    return 0;
}
"""


BPF_FRAMES = ("bpf_prog_", "bpf_trace_run", "__bpf_trace_")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "biostacks",
        "Tracing block I/O with init stacks.\n\n"
        "At the block_io_start (or block_rq_insert) and block_rq_complete tracepoints, not by fentry on\n"
        "blk_account_io_start/done: the same moments; each stack starts in the block layer.",
        EXAMPLES,
    )
    block.add_disk(p)
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("duration", nargs="?", type=common.positive_int, help="seconds to trace (default: until Ctrl-C)")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("REQUEST", block.REQUEST)
        .replace("DISK_FILTER", block.disk_filter(args.disk))
        .replace("UNIT", "1000000" if args.milliseconds else "1000")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("biostacks", lambda: run(args))


def _print(b: BPF, label: str) -> None:
    hists: dict[tuple[int, int, int, int, bytes], dict[int, int]] = {}
    for k, v in b["dist"].items():
        w = k.who
        slots = hists.setdefault((w.pid, w.stack_id, w.major, w.minor, bytes(w.comm)), {})
        slots[k.slot] = slots.get(k.slot, 0) + v.value
    names = block.disk_names()
    stacks = b["stacks"]
    for (pid, stack_id, major, minor, comm), slots in hists.items():
        disk = names.get((major, minor), "Unknown")
        print("%-14.14s %-6d %-7s" % (comm.decode("utf-8", "replace"), pid, disk))
        frames: list[Any] = []
        if stack_id >= 0:
            try:
                frames = list(stacks.walk(stack_id))
            except KeyError:
                pass
        names_of = [b.ksym(addr).decode("utf-8", "replace") for addr in frames]
        # the stack is the tracepoint's: the program and the tracepoint's runner come first
        while names_of and names_of[0].startswith(BPF_FRAMES):
            names_of.pop(0)
        for name in names_of:
            print(name)
        vals = [0] * (max(slots) + 1)
        for slot, n in slots.items():
            vals[slot] = n
        print_log2_hist(vals, label)
        print()


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        b.attach_raw_tracepoint(tp=block.submit_tracepoint(), fn_name="trace_start")
        b.attach_raw_tracepoint(tp="block_rq_complete", fn_name="trace_done")
        print("Tracing block I/O with init stacks. Hit Ctrl-C to end.", flush=True)
        try:
            if args.duration:
                time.sleep(args.duration)
            else:
                common.until_interrupted()
        except KeyboardInterrupt:
            pass
        _print(b, "msecs" if args.milliseconds else "usecs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
