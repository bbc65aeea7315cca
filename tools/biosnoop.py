#!/usr/bin/env python3
"""biosnoop: trace block device I/O, with the issuing process, sector, size and latency.

The issuing PID and comm are those of the task that made the request (block:block_io_start, where
bcc's kprobe on blk_account_io_start fires); latency runs from the issue to the driver
(block:block_rq_issue, bcc's blk_mq_start_request) to completion (block:block_rq_complete), and with
-Q the time queued in the OS before the issue is shown too. The raw tracepoints give the request
itself, which keys the maps as in bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool biosnoop           # trace all block I/O
    rbcc tool biosnoop -Q        # include OS queued time
    rbcc tool biosnoop -d sdc    # trace sdc only
    rbcc tool biosnoop -P        # display block I/O pattern
"""

BPF_TEXT = r"""
#include <linux/blk-mq.h>

#define SEQUENTIAL 1
#define RANDOM 2

struct who_t {
    u64 ts;
    u32 pid;
    char comm[TASK_COMM_LEN];
};

struct data_t {
    u32 pid;
    u32 pattern;
    u64 rwflag;
    u64 delta;
    u64 qdelta;
    u64 sector;
    u64 len;
    u64 ts;
    char disk_name[DISK_NAME_LEN];
    char name[TASK_COMM_LEN];
};

struct disk_id_t {
    u32 major;
    u32 minor;
};

ISSUE_C
BPF_HASH(whobyreq, struct request *, struct who_t, 10240);
BPF_HASH(last_sectors, struct disk_id_t, u64);
BPF_PERF_OUTPUT(events);

// in the task that makes the request
int trace_pid_start(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    DISK_FILTER
    struct who_t who = {};
    if (bpf_get_current_comm(&who.comm, sizeof(who.comm)))
        return 0;
    who.pid = bpf_get_current_pid_tgid() >> 32;
    if (QUEUED)
        who.ts = bpf_ktime_get_ns();
    whobyreq.update(&rq, &who);
    return 0;
}

int trace_req_completion(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    struct issued_t *at = issued.lookup(&rq);
    if (!at)
        return 0;   // issued before we started, or another disk
    struct data_t data = {};
    u64 now = bpf_ktime_get_ns();
    data.delta = now - at->ts;
    data.ts = now / 1000;
    data.len = at->len;
    data.sector = at->sector;
    struct gendisk *disk = rq->q->disk;
    bpf_probe_read_kernel_str(&data.disk_name, sizeof(data.disk_name), disk->disk_name);
    data.rwflag = (rq->cmd_flags & REQ_OP_MASK) == REQ_OP_WRITE;

    struct who_t *who = whobyreq.lookup(&rq);
    if (who) {
        data.pid = who->pid;
        __builtin_memcpy(&data.name, who->comm, sizeof(data.name));
        if (QUEUED && who->ts && who->ts < at->ts)
            data.qdelta = at->ts - who->ts;
    } else {
        data.name[0] = '?';
    }

    if (PATTERN) {
        struct disk_id_t id = {.major = disk->major, .minor = disk->first_minor};
        u64 *last = last_sectors.lookup(&id);
        if (last)
            data.pattern = *last == at->sector ? SEQUENTIAL : RANDOM;
        u64 next = at->sector + at->len / 512;
        last_sectors.update(&id, &next);
    }

    events.perf_submit(ctx, &data, sizeof(data));
    issued.delete(&rq);
    whobyreq.delete(&rq);
    return 0;
}
"""

PATTERNS = {1: b"S", 2: b"R"}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("biosnoop", "Trace block I/O", EXAMPLES)
    p.add_argument("-Q", "--queue", action="store_true", help="include OS queued time")
    block.add_disk(p, help="trace this disk only")
    p.add_argument("-P", "--pattern", action="store_true", help="display block I/O pattern (sequential or random)")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("ISSUE_C", block.ISSUE_C)
        .replace("REQUEST", block.REQUEST)
        .replace("DISK_FILTER", block.disk_filter(args.disk))
        .replace("QUEUED", "1" if args.queue else "0")
        .replace("PATTERN", "1" if args.pattern else "0")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("biosnoop", lambda: run(args))


def header(args: argparse.Namespace) -> str:
    text = "%-11s %-14s %-7s %-9s %-1s %-10s %-7s" % ("TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES")
    if args.pattern:
        text += "%-1s " % "P"
    if args.queue:
        text += "%7s " % "QUE(ms)"
    return text + "%7s" % "LAT(ms)"


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    block.attach_requests(b)
    print(header(args), flush=True)
    first_ts = 0

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal first_ts
        e = b["events"].event(data)
        if first_ts == 0:
            first_ts = e.ts
        line = b"%-11.6f %-14.14s %-7d %-9s %-1s %-10d %-7d" % (
            (e.ts - first_ts) / 1e6,
            e.name,
            e.pid,
            e.disk_name or b"<unknown>",
            b"W" if e.rwflag else b"R",
            e.sector,
            e.len,
        )
        if args.pattern:
            line += b"%-1s " % PATTERNS.get(e.pattern, b"?")
        if args.queue:
            line += b"%7.2f " % (e.qdelta / 1e6)
        printb(line + b"%7.2f" % (e.delta / 1e6))

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
