#!/usr/bin/env python3
"""oomkill: trace the out-of-memory killer, with the task that triggered it and the one it killed.

bcc's oomkill hooks oom_kill_process with a kprobe; here the oom:mark_victim tracepoint (in its raw
form, which hands over the victim's task) fires at the same kill, in the triggering task. The page
count bcc reads from the OOM control (oc->totalpages, the memory the killer weighed: the limit of the
memory cgroup that ran out, or all of RAM and swap) is not passed to the tracepoint: it is taken as
the lowest memory limit among the victim's cgroup and its ancestors, else RAM plus swap. A task
marked as victim without a kill (one already exiting that is given the reserves) is shown too.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool oomkill        # trace OOM kills, until Ctrl-C
"""

# How many memory cgroups up from the victim's the limit is looked for (cgroup trees are shallow).
MEMCG_DEPTH = 16

BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u32 fpid;
    u32 tpid;
    u64 pages;
    char fcomm[TASK_COMM_LEN];
    char tcomm[TASK_COMM_LEN];
};

BPF_PERF_OUTPUT(events);

// the lowest memory.max (in pages) from the task's memory cgroup up; 0 when none is set
static __always_inline u64 memcg_limit(struct task_struct *task) {
    struct cgroup_subsys_state *css = task->cgroups->subsys[memory_cgrp_id];
    u64 lowest = 0;
    for (int i = 0; i < MEMCG_DEPTH && css; i++) {
        // container_of by hand: rbcc's rewriter takes offsetof() (libbpf's, &((T *)0)->m) for a read
        // of kernel memory; vmlinux.h is this kernel's own layout, so the builtin's offset is right
        struct mem_cgroup *memcg = (struct mem_cgroup *)((u64)css - __builtin_offsetof(struct mem_cgroup, css));
        u64 max = memcg->memory.max;
        // the root and unlimited cgroups carry PAGE_COUNTER_MAX, far above any real memory
        if (max < (1ULL << 40) && (lowest == 0 || max < lowest))
            lowest = max;
        css = css->parent;
    }
    return lowest;
}

int trace_mark_victim(struct bpf_raw_tracepoint_args *ctx) {
    struct task_struct *victim = (struct task_struct *)ctx->args[0];
    struct data_t data = {};
    data.fpid = bpf_get_current_pid_tgid() >> 32;
    data.tpid = victim->tgid;
    data.pages = memcg_limit(victim);
    bpf_get_current_comm(&data.fcomm, sizeof(data.fcomm));
    bpf_probe_read_kernel_str(&data.tcomm, sizeof(data.tcomm), victim->comm);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


DESCRIPTION = (
    "Trace the out-of-memory (OOM) killer\n\n"
    "From the oom:mark_victim tracepoint; PAGES is the lowest memory cgroup limit above the\n"
    "victim, else RAM plus swap (bcc reads the OOM control's total)."
)


def build_parser() -> argparse.ArgumentParser:
    return common.parser("oomkill", DESCRIPTION, EXAMPLES)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (the same for every run: oomkill has no options)."""
    return BPF_TEXT.replace("MEMCG_DEPTH", str(MEMCG_DEPTH))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("oomkill", lambda: run(args))


def total_pages() -> int:
    """RAM plus swap, in pages: what a system-wide OOM kill weighs."""
    kb = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            kb[name] = int(rest.split()[0])
    return (kb.get("MemTotal", 0) + kb.get("SwapTotal", 0)) * 1024 // os.sysconf("SC_PAGE_SIZE")


def line(e: object, loadavg: str, system_pages: int) -> str:
    return '%s Triggered by PID %d ("%s"), OOM kill of PID %d ("%s"), %d pages, loadavg: %s' % (
        common.strftime_now(),
        e.fpid,  # type: ignore[attr-defined]
        e.fcomm.decode("utf-8", "replace"),  # type: ignore[attr-defined]
        e.tpid,  # type: ignore[attr-defined]
        e.tcomm.decode("utf-8", "replace"),  # type: ignore[attr-defined]
        min(e.pages, system_pages) if e.pages else system_pages,  # type: ignore[attr-defined]
        loadavg,
    )


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    b.attach_raw_tracepoint(tp="mark_victim", fn_name="trace_mark_victim")
    system_pages = total_pages()

    def on_event(cpu: int, data: int, size: int) -> None:
        with open("/proc/loadavg") as f:
            loadavg = f.read().rstrip()
        print(line(b["events"].event(data), loadavg, system_pages), flush=True)

    b["events"].open_perf_buffer(on_event)
    print("Tracing OOM kills... Ctrl-C to stop.", flush=True)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
