#!/usr/bin/env python3
"""drsnoop: trace direct reclaim, with the task that stalled, its latency and the pages it freed.

It uses the vmscan:mm_vmscan_direct_reclaim_begin/end tracepoints, as bcc's drsnoop does. With -v,
the free memory shown is read from the kernel's zone counters (vm_zone_stat) when /proc/kallsyms
names them (CONFIG_KALLSYMS_ALL), as in bcc; without them it is MemFree of /proc/meminfo when the
event is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.utils import ArgString, printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool drsnoop           # trace all direct reclaim
    rbcc tool drsnoop -T        # include timestamps
    rbcc tool drsnoop -U        # include UID
    rbcc tool drsnoop -P 181    # only trace PID 181
    rbcc tool drsnoop -t 123    # only trace TID 123
    rbcc tool drsnoop -u 1000   # only trace UID 1000
    rbcc tool drsnoop -d 10     # trace for 10 seconds only
    rbcc tool drsnoop -n main   # only print process names containing "main"
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct val_t {
    u64 id;
    u64 ts;
    char name[TASK_COMM_LEN];
    u64 free_pages;
};

struct data_t {
    u64 id;
    u32 uid;
    u64 nr_reclaimed;
    u64 delta;
    u64 ts;
    char name[TASK_COMM_LEN];
    u64 free_pages;
};

BPF_HASH(start, u64, struct val_t);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(vmscan, mm_vmscan_direct_reclaim_begin) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    u32 tid = id;
    u32 uid = bpf_get_current_uid_gid();
    if (TASK_FILTER || UID_FILTER)
        return 0;
    struct val_t val = {.id = id, .ts = bpf_ktime_get_ns()};
    if (bpf_get_current_comm(&val.name, sizeof(val.name)))
        return 0;
    if (VM_STAT_ADDR)   // NR_FREE_PAGES is the first zone counter
        bpf_probe_read_kernel(&val.free_pages, sizeof(val.free_pages), (const void *)VM_STAT_ADDR);
    start.update(&id, &val);
    return 0;
}

TRACEPOINT_PROBE(vmscan, mm_vmscan_direct_reclaim_end) {
    u64 id = bpf_get_current_pid_tgid();
    struct val_t *began = start.lookup(&id);
    if (!began)
        return 0;   // began before we started, or filtered
    u64 now = bpf_ktime_get_ns();
    struct data_t data = {.id = id, .delta = now - began->ts, .ts = now / 1000};
    data.uid = bpf_get_current_uid_gid();
    data.nr_reclaimed = args->nr_reclaimed;
    data.free_pages = began->free_pages;
    __builtin_memcpy(&data.name, began->name, sizeof(data.name));
    events.perf_submit(args, &data, sizeof(data));
    start.delete(&id);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("drsnoop", "Trace direct reclaim", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-t", "--tid", type=int, help="trace this TID only")
    p.add_argument("-u", "--uid", type=int, help="trace this UID only")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    p.add_argument("-n", "--name", type=ArgString, help="only print process names containing this name")
    p.add_argument("-v", "--verbose", action="store_true", help="show system memory state")
    return p


def vm_stat_address() -> int:
    """Where the kernel's zone counters are, from /proc/kallsyms; 0 when it does not name them."""
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                addr, _, name = line.rstrip("\n").split(" ", 2)
                if name.split("\t")[0] in ("vm_zone_stat", "vm_stat"):
                    return int(addr, 16)
    except OSError:
        pass
    return 0


def bpf_text(args: argparse.Namespace, vm_stat: int = 0) -> str:
    """The C for these options; ``vm_stat`` is the zone counters' address (0: not read)."""
    if args.tid is not None:  # a TID is more precise than its PID
        task = common.pid_condition("tid", args.tid)
    else:
        task = common.pid_condition("pid", args.pid)
    return (
        BPF_TEXT.replace("TASK_FILTER", task)
        .replace("UID_FILTER", common.pid_condition("uid", args.uid))
        .replace("VM_STAT_ADDR", "0x%xULL" % vm_stat if vm_stat else "0")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("drsnoop", lambda: run(args))


def header(args: argparse.Namespace) -> str:
    text = "%-14s" % "TIME(s)" if args.timestamp else ""
    if args.print_uid:
        text += "%-6s" % "UID"
    text += "%-14s %-6s %8s %5s" % ("COMM", "TID" if args.tid is not None else "PID", "LAT(ms)", "PAGES")
    return text + ("%10s" % "FREE(KB)" if args.verbose else "")


def _meminfo_free_kb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemFree:"):
                return int(line.split()[1])
    return 0


def run(args: argparse.Namespace) -> int:
    vm_stat = vm_stat_address() if args.verbose else 0
    b = common.load(args, bpf_text(args, vm_stat))
    if b is None:
        return 0
    print(header(args), flush=True)
    first_ts = 0
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal first_ts
        e = b["events"].event(data)
        if not first_ts:
            first_ts = e.ts
        if args.name and bytes(args.name) not in e.name:
            return
        out = b""
        if args.timestamp:
            out += b"%-14.9f" % ((e.ts - first_ts) / 1e6)
        if args.print_uid:
            out += b"%-6d" % e.uid
        task = e.id & 0xFFFFFFFF if args.tid is not None else e.id >> 32
        out += b"%-14.14s %-6d %8.2f %5d" % (e.name, task, e.delta / 1e6, e.nr_reclaimed)
        if args.verbose:
            out += b"%10d" % (e.free_pages * page_kb if vm_stat else _meminfo_free_kb())
        printb(out)

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    with b:
        common.poll_events_for(b, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
