#!/usr/bin/env python3
"""biotop: block device (disk) I/O by process, top-style.

The process is the one that made the request (block:block_io_start, where bcc's kprobe on
blk_account_io_start fires); time runs from the issue to the driver (block:block_rq_issue) to
completion (block:block_rq_complete), each request keyed by its own address, as in bcc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import block, common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool biotop            # block device I/O top, 1 second refresh
    rbcc tool biotop -C         # don't clear the screen
    rbcc tool biotop -p 181     # only trace PID 181
    rbcc tool biotop 5          # 5 second summaries
    rbcc tool biotop 5 10       # 5 second summaries, 10 times only
"""

BPF_TEXT = r"""
#include <linux/blk-mq.h>

struct who_t {
    u32 pid;
    char name[TASK_COMM_LEN];
};

// one line of output
struct info_t {
    u32 pid;
    int rwflag;
    int major;
    int minor;
    char name[TASK_COMM_LEN];
};

struct val_t {
    u64 bytes;
    u64 us;
    u32 io;
};

ISSUE_C
BPF_HASH(whobyreq, struct request *, struct who_t, 10240);
BPF_HASH(counts, struct info_t, struct val_t);

// in the task that makes the request
int trace_pid_start(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (PID_FILTER)
        return 0;
    struct who_t who = {.pid = pid};
    if (bpf_get_current_comm(&who.name, sizeof(who.name)) == 0)
        whobyreq.update(&rq, &who);
    return 0;
}

int trace_req_completion(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    struct issued_t *at = issued.lookup(&rq);
    if (!at)
        return 0;   // issued before we started
    struct who_t *who = whobyreq.lookup(&rq);
    u32 pid = who ? who->pid : 0;
    if (PID_FILTER) {
        issued.delete(&rq);
        whobyreq.delete(&rq);
        return 0;
    }
    struct info_t info = {.pid = pid};
    struct gendisk *disk = rq->q->disk;
    info.major = disk->major;
    info.minor = disk->first_minor;
    info.rwflag = (rq->cmd_flags & REQ_OP_MASK) == REQ_OP_WRITE;
    // a request whose maker we missed counts as PID 0
    if (who)
        __builtin_memcpy(&info.name, who->name, sizeof(info.name));
    struct val_t zero = {};
    struct val_t *val = counts.lookup_or_try_init(&info, &zero);
    if (val) {
        val->us += (bpf_ktime_get_ns() - at->ts) / 1000;
        val->bytes += at->len;
        val->io++;
    }
    issued.delete(&rq);
    whobyreq.delete(&rq);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("biotop", "Block device (disk) I/O by process", EXAMPLES)
    block.add_top_options(p)
    p.add_argument("-p", "--pid", type=int, metavar="PID", help="trace this PID only")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("ISSUE_C", block.ISSUE_C)
        .replace("DISK_FILTER", "")
        .replace("REQUEST", block.REQUEST)
        .replace("PID_FILTER", common.pid_condition("pid", args.pid))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("biotop", lambda: run(args))


def _disks() -> dict[tuple[int, int], str]:
    disks = {}
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                fields = line.split()
                disks[(int(fields[0]), int(fields[1]))] = fields[2]
    except OSError:
        pass
    return disks


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    block.attach_requests(b)
    print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
    disks = _disks()
    counts = b["counts"]
    with b:
        for _ in block.top_screens(args):
            print(
                "%-7s %-16s %1s %-3s %-3s %-8s %5s %7s %6s"
                % ("PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes", "AVGms")
            )
            rows = sorted(counts.items(), key=lambda kv: kv[1].bytes, reverse=True)[: args.maxrows]
            for k, v in rows:
                print(
                    "%-7d %-16s %1s %-3d %-3d %-8s %5s %7s %6.2f"
                    % (
                        k.pid,
                        k.name.decode("utf-8", "replace"),
                        "W" if k.rwflag else "R",
                        k.major,
                        k.minor,
                        disks.get((k.major, k.minor), "?"),
                        v.io,
                        v.bytes / 1024,
                        v.us / 1000 / v.io,
                    )
                )
            counts.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
