#!/usr/bin/env python3
"""compactsnoop: trace memory compaction of zones, with the task, zone, order, latency and result.

The compaction tracepoints, as bcc: mm_compaction_suitable (the zone and order of a compaction about
to run), mm_compaction_begin and mm_compaction_end (its time and result), read through their format
fields (bcc reads the raw tracepoints' arguments by position, which moved in Linux 5.x). Unlike bcc's, it also shows the
compaction asked for through /proc/sys/vm/compact_memory or a node's ``compact`` file, which has no
order (ORDER -1) and no mm_compaction_suitable event: its zone is found from the start pfn the begin
event carries (/proc/zoneinfo's start_pfn). Zone and result names come from the kernel's BTF (enum
zone_type, enum compact_result). -e adds the zone's watermarks and free pages, and the fragmentation
index, which only a kretprobe on fragmentation_index reads: without kprobes, -e says so and stops.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import block, common

__all__ = ["bpf_text", "build_parser", "main", "zone_starts"]

EXAMPLES = """examples:
    rbcc tool compactsnoop          # trace all compact stall
    rbcc tool compactsnoop -T       # include timestamps
    rbcc tool compactsnoop -d 10    # trace for 10 seconds only
    rbcc tool compactsnoop -K       # output kernel stack trace
    rbcc tool compactsnoop -e       # show extended fields
"""

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>
#include <linux/mmzone.h>
#include <linux/compaction.h>

struct val_t {
    int nid;
    int idx;
    int order;
    int sync;
    u64 zone_start;  // of a compaction without a suitable event (nid and idx unknown: -1)
    int fragindex;
    int low;
    int min;
    int high;
    int free;
    u64 ts;
};

struct data_t {
    u32 pid;
    u32 tid;
    int nid;
    int idx;
    int order;
    u64 delta;
    u64 ts;
    u64 zone_start;
    int sync;
    int fragindex;
    int low;
    int min;
    int high;
    int free;
    int status;
    int stack_id;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(start, u64, struct val_t);
BPF_PERF_OUTPUT(events);
BPF_STACK_TRACE(stack_traces, 2048);

static __always_inline int skip(u64 id) {
    return PID_FILTER;
}

#if EXTENDED
int trace_fragmentation_index_return(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (skip(id))
        return 0;
    struct val_t v = {.fragindex = (int)PT_REGS_RC(ctx)};
    start.update(&id, &v);
    return 0;
}

// the raw form hands over the zone itself, for its watermarks
RAW_TRACEPOINT_PROBE(mm_compaction_suitable) {
    // (struct zone *zone, int order, int ret)
    struct zone *zone = (struct zone *)ctx->args[0];
    int order = (int)ctx->args[1];
    if ((int)ctx->args[2] != COMPACT_CONTINUE)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    if (skip(id))
        return 0;
    struct val_t *v = start.lookup(&id);
    if (!v) {
        // no fragmentation index taken: an order not above PAGE_ALLOC_COSTLY_ORDER
        struct val_t fresh = {.fragindex = -1000};
        start.update(&id, &fresh);
        v = start.lookup(&id);
        if (!v)
            return 0;
    }
    struct pglist_data *pgdat = NULL;
    bpf_probe_read_kernel(&pgdat, sizeof(pgdat), &zone->zone_pgdat);
    // zone_idx(): the zone's place in its node's node_zones
    v->idx = ((u64)zone - ((u64)pgdat + offsetof(struct pglist_data, node_zones))) / sizeof(struct zone);
    v->nid = 0;
#if HAS_ZONE_NODE
    bpf_probe_read_kernel(&v->nid, sizeof(v->nid), &zone->node);
#endif
    v->order = order;
    unsigned long marks[NR_WMARK] = {};
    unsigned long boost = 0;
    long free = 0;
    bpf_probe_read_kernel(&marks, sizeof(marks), &zone->_watermark);
    bpf_probe_read_kernel(&boost, sizeof(boost), &zone->watermark_boost);
    bpf_probe_read_kernel(&free, sizeof(free), &zone->vm_stat[NR_FREE_PAGES]);
    v->min = marks[WMARK_MIN] + boost;
    v->low = marks[WMARK_LOW] + boost;
    v->high = marks[WMARK_HIGH] + boost;
    v->free = free;
    return 0;
}
#else
TRACEPOINT_PROBE(compaction, mm_compaction_suitable) {
    if (args->ret != COMPACT_CONTINUE)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    if (skip(id))
        return 0;
    struct val_t v = {.nid = args->nid, .idx = args->idx, .order = args->order, .fragindex = -1000};
    start.update(&id, &v);
    return 0;
}
#endif

TRACEPOINT_PROBE(compaction, mm_compaction_begin) {
    u64 id = bpf_get_current_pid_tgid();
    if (skip(id))
        return 0;
    struct val_t *v = start.lookup(&id);
    if (!v) {
        // compaction asked for through /proc/sys/vm/compact_memory: no order, no suitable event
        struct val_t manual = {.nid = -1, .idx = -1, .order = -1, .fragindex = -1000,
                               .zone_start = args->zone_start};
        start.update(&id, &manual);
        v = start.lookup(&id);
        if (!v)
            return 0;
    }
    v->ts = bpf_ktime_get_ns();
    v->sync = args->sync;
    return 0;
}

TRACEPOINT_PROBE(compaction, mm_compaction_end) {
    u64 id = bpf_get_current_pid_tgid();
    struct val_t *v = start.lookup(&id);
    if (!v)
        return 0;
    u64 now = bpf_ktime_get_ns();
    struct data_t data = {
        .pid = id >> 32, .tid = (u32)id, .nid = v->nid, .idx = v->idx, .order = v->order,
        .delta = now - v->ts, .ts = now / 1000, .zone_start = v->zone_start, .sync = v->sync,
        .fragindex = v->fragindex, .low = v->low, .min = v->min, .high = v->high, .free = v->free,
        .status = args->status,
    };
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    data.stack_id = KERNEL_STACK;
    events.perf_submit(args, &data, sizeof(data));
    start.delete(&id);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "compactsnoop",
        "Trace compact zone\n\nCompaction asked for through /proc/sys/vm/compact_memory is shown too, as ORDER -1.\n"
        "-e needs kprobes (fragmentation_index).",
        EXAMPLES,
    )
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-e", "--extended_fields", action="store_true", help="show system memory state")
    return p


def bpf_text(args: argparse.Namespace, *, has_zone_node: bool = True) -> str:
    """The C for these options (pure: the kernel fact comes as an argument: ``has_zone_node``, whether
    struct zone has ``node``, as with CONFIG_NUMA)."""
    return (
        BPF_TEXT.replace("PID_FILTER", f"(id >> 32) != {int(args.pid)}" if args.pid else "0")
        .replace("HAS_ZONE_NODE", str(int(has_zone_node)))
        .replace("EXTENDED", str(int(args.extended_fields)))
        .replace("KERNEL_STACK", "stack_traces.get_stackid(args, 0)" if args.kernel_stack else "-1")
    )


def zone_starts(zoneinfo: str) -> dict[int, tuple[int, str]]:
    """start pfn -> (node, zone name) from the text of /proc/zoneinfo."""
    found: dict[int, tuple[int, str]] = {}
    node, zone = -1, ""
    for line in zoneinfo.splitlines():
        words = line.split()
        if line.startswith("Node ") and len(words) >= 4:
            node, zone = int(words[1].rstrip(",")), "ZONE_" + words[3].upper()
        elif words[:1] == ["start_pfn:"] and zone:
            found[int(words[1])] = (node, zone)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("compactsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    from rbcc import _core

    if args.extended_fields and not args.ebpf:
        block.need_kprobes(
            "compactsnoop",
            "fragmentation_index",
            "-e's fragmentation index is its return value, which no tracepoint carries",
            "run without -e",
        )
    b = common.load(args, bpf_text(args, has_zone_node=_core.kernel_struct_has_field("zone", "node")))
    if b is None:
        return 0
    with b:
        if args.extended_fields:
            b.attach_kretprobe(event="fragmentation_index", fn_name="trace_fragmentation_index_return")
        return show(b, args)


def show(b: BPF, args: argparse.Namespace) -> int:
    from rbcc import _core

    zones = {v: k for k, v in _core.kernel_enum("zone_type")}
    results = {v: k.removeprefix("COMPACT_").lower() for k, v in _core.kernel_enum("compact_result")}
    with open("/proc/zoneinfo") as f:
        starts = zone_starts(f.read())
    line = ""
    if args.timestamp:
        line += "%-14s " % "TIME(s)"
    line += "%-14s %-6s %-4s %-12s %-5s %-7s " % ("COMM", "PID", "NODE", "ZONE", "ORDER", "MODE")
    if args.extended_fields:
        line += "%-8s %-8s %-8s %-8s %-8s " % ("FRAGIDX", "MIN", "LOW", "HIGH", "FREE")
    print(line + "%9s %16s" % ("LAT(ms)", "STATUS"), flush=True)
    first_ts = 0

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal first_ts
        e: Any = b["events"].event(data)
        first_ts = first_ts or e.ts
        nid, zone = e.nid, zones.get(e.idx, str(e.idx))
        if e.idx < 0:  # a compaction without a suitable event: its zone from where it starts
            nid, zone = starts.get(e.zone_start, (-1, "?"))
        out = ""
        if args.timestamp:
            out += "%-14.9f " % ((e.ts - first_ts) / 1e6)
        out += "%-14.14s %-6s %-4s %-12s %-5s %-7s " % (
            e.comm.decode("utf-8", "replace"),
            e.pid,
            nid,
            zone,
            e.order,
            "SYNC" if e.sync else "ASYNC",
        )
        if args.extended_fields:
            out += "%-8.3f %-8s %-8s %-8s %-8s " % (e.fragindex / 1000, e.min, e.low, e.high, e.free)
        print(out + "%9.3f %16s" % (e.delta / 1e6, results.get(e.status, str(e.status))))
        if args.kernel_stack and e.stack_id >= 0:
            for addr in b["stack_traces"].walk(e.stack_id):
                print("\t%s" % b.ksym(addr, show_offset=True).decode("utf-8", "replace"))
            print()
        sys.stdout.flush()

    b["events"].open_perf_buffer(on_event, page_cnt=64)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    common.poll_events(b, until=None if deadline is None else lambda: time.monotonic() >= deadline)
    return 0


if __name__ == "__main__":
    sys.exit(main())
