#!/usr/bin/env python3
"""offcputime: summarize off-CPU time by stack trace.

From the sched_switch raw tracepoint: the thread switched out is still the current one there, so its
stacks are taken as it blocks and kept until it is switched back in, when the time it spent off the
CPU is added to them (bcc takes the stacks in finish_task_switch, a kprobe, as the thread resumes:
the same stacks).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, offcpu, pictures, sched, sched_stacks

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool offcputime             # trace off-CPU stack time until Ctrl-C
    rbcc tool offcputime 5           # trace for 5 seconds only
    rbcc tool offcputime -f 5        # 5 seconds, and output in folded format
    rbcc tool offcputime --svg off.svg 5   # 5 seconds, drawn as an off-CPU flame graph
    rbcc tool offcputime -m 1000     # trace only events that last more than 1000 usec
    rbcc tool offcputime -M 10000    # trace only events that last less than 10000 usec
    rbcc tool offcputime -p 185      # only trace threads for PID 185
    rbcc tool offcputime -t 188      # only trace thread 188
    rbcc tool offcputime -u          # only trace user threads (no kernel)
    rbcc tool offcputime -k          # only trace kernel threads (no user)
    rbcc tool offcputime -U          # only show user space stacks (no kernel)
    rbcc tool offcputime -K          # only show kernel space stacks (no user)
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct key_t {
    u32 pid;
    u32 tgid;
    int user_stack_id;
    int kernel_stack_id;
    char name[TASK_COMM_LEN];
};

// a thread off the CPU: since when, and where it blocked
struct blocked_t {
    u64 ts;
    struct key_t key;
};

BPF_HASH(counts, struct key_t);
BPF_HASH(start, u32, struct blocked_t, 10240);
BPF_STACK_TRACE(stack_traces, STACK_STORAGE_SIZE);

struct warn_event_t {
    u32 pid;
    u32 tgid;
    u32 t_start;
    u32 t_end;
};
BPF_PERF_OUTPUT(warn_events);

int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    // sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
    struct task_struct *prev = (struct task_struct *)ctx->args[1];
    struct task_struct *next = (struct task_struct *)ctx->args[2];
    u32 pid = prev->pid;
    u32 tgid = prev->tgid;
    if ((THREAD_FILTER) && (STATE_FILTER)) {
        // prev is still the current task: these are the stacks it blocks in
        struct blocked_t b = {.ts = bpf_ktime_get_ns()};
        b.key.pid = pid;
        b.key.tgid = tgid;
        b.key.user_stack_id = USER_STACK_GET;
        b.key.kernel_stack_id = KERNEL_STACK_GET;
        bpf_get_current_comm(&b.key.name, sizeof(b.key.name));
        start.update(&pid, &b);
    }

    pid = next->pid;
    struct blocked_t *bp = start.lookup(&pid);
    if (bp == 0)
        return 0;  // filtered out, or switched out before tracing began
    u64 t_start = bp->ts;
    u64 t_end = bpf_ktime_get_ns();
    struct key_t key = bp->key;
    start.delete(&pid);
    if (t_start > t_end) {
        struct warn_event_t event = {
            .pid = pid,
            .tgid = key.tgid,
            .t_start = t_start,
            .t_end = t_end,
        };
        warn_events.perf_submit(ctx, &event, sizeof(event));
        return 0;
    }
    u64 delta = (t_end - t_start) / 1000;
    if (delta < MINBLOCK_US || delta > MAXBLOCK_US)
        return 0;
    counts.increment(key, delta);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("offcputime", "Summarize off-CPU time by stack trace", EXAMPLES)
    threads = p.add_mutually_exclusive_group()
    threads.add_argument(
        "-p", "--pid", metavar="PID", dest="tgid", type=common.non_negative_int, help="trace this PID only"
    )
    threads.add_argument(
        "-t", "--tid", metavar="TID", dest="pid", type=common.non_negative_int, help="trace this TID only"
    )
    offcpu.add_options(p, threads)
    return p


def thread_filter(args: argparse.Namespace) -> tuple[str, str]:
    """(C condition on prev/tgid/pid for the threads to trace, how the header names them)."""
    if args.tgid is not None:
        return f"tgid == {args.tgid}", "PID %d" % args.tgid
    if args.pid is not None:
        return f"pid == {args.pid}", "TID %d" % args.pid
    if args.user_threads_only:
        return "!(prev->flags & PF_KTHREAD)", "user threads"
    if args.kernel_threads_only:
        return "prev->flags & PF_KTHREAD", "kernel threads"
    return "1", "all threads"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return offcpu.fill(BPF_TEXT, args, thread_filter(args)[0], "prev")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if offcpu.user_stacks_of_kernel_threads(args):
        return 2
    return common.guard("offcputime", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), sched.SWITCH)
    if b is None:
        return 0
    with b:
        if not args.folded:
            line = "Tracing off-CPU time (us) of %s by %s stack" % (
                thread_filter(args)[1],
                sched_stacks.stack_context(args),
            )
            print(line + sched_stacks.duration_tail(args.duration), flush=True)

        def on_warn(cpu: int, data: int, size: int) -> None:
            e = b["warn_events"].event(data)
            print(
                "WARN: Skipped an event with negative duration: pid:%d, tgid:%d, off-cpu:%d, on-cpu:%d"
                % (e.pid, e.tgid, e.t_start, e.t_end),
                file=sys.stderr,
            )

        b["warn_events"].open_perf_buffer(on_warn)
        deadline = time.monotonic() + args.duration
        # off-CPU time in Gregg's blue: it is time spent waiting, not running
        svg = pictures.flame_sink(args, "offcputime", title="Off-CPU Time Flame Graph", count_name="us", palette="io")
        sched_stacks.trace_then_report(
            args,
            lambda: common.poll_events(b, until=lambda: time.monotonic() >= deadline),
            lambda: report(b, args, svg),
        )
        if svg is not None:
            svg.write()
    return 0


def report(b: BPF, args: argparse.Namespace, svg: pictures.FlameSink | None = None) -> None:
    stacks = b["stack_traces"]
    missing = sched_stacks.Missing(hint_errno=12)  # ENOMEM: the stack map is full
    for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value):
        missing.check_key(args, k)
        # user stacks are symbolized per process (tgid), as the threads share one address space
        kernel = sched_stacks.kernel_frames(b, stacks, k.kernel_stack_id, from_tracepoint=True)
        user = sched_stacks.user_frames(b, stacks, k.user_stack_id, k.tgid)
        sched_stacks.print_stack(args, k, v.value, kernel, user)
        if svg is not None:
            svg.add(sched_stacks.folded_stack(args, k, kernel, user), v.value)
    missing.warn("lost and could not be displayed")


if __name__ == "__main__":
    sys.exit(main())
