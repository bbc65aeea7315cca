#!/usr/bin/env python3
"""wakeuptime: summarize sleep to wakeup time by waker kernel stack.

A thread's time off the CPU, from its switch out (sched_switch raw tracepoint) to its wakeup, added
to the kernel stack of the thread that woke it. The wakeup is taken at sched_waking, which fires in
the waker's own context: sched_wakeup may fire later on the woken thread's CPU (the kernel queues
remote wakeups there), where the stack would be an interrupt's, not the waker's. bcc uses
try_to_wake_up's kprobe for the same reason.
"""

from __future__ import annotations

import argparse
import errno
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, pictures, sched, sched_stacks
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool wakeuptime             # trace blocked time with waker stacks
    rbcc tool wakeuptime 5           # trace for 5 seconds only
    rbcc tool wakeuptime -f 5        # 5 seconds, and output in folded format
    rbcc tool wakeuptime --svg wake.svg 5   # 5 seconds, drawn as a wakeup flame graph
    rbcc tool wakeuptime -u          # don't include kernel threads (user only)
    rbcc tool wakeuptime -p 185      # trace for PID 185 only
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct key_t {
    int w_k_stack_id;
    char waker[TASK_COMM_LEN];
    char target[TASK_COMM_LEN];
};

BPF_HASH(counts, struct key_t);
BPF_HASH(start, u32, u64, 10240);
BPF_STACK_TRACE(stack_traces, STACK_STORAGE_SIZE);

int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    // the task switched out is still the current one
    struct task_struct *p = (struct task_struct *)bpf_get_current_task();
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 pid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    if (FILTER)
        return 0;
    u64 ts = bpf_ktime_get_ns();
    start.update(&tid, &ts);
    return 0;
}

int on_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
    // sched_waking(struct task_struct *p), in the waker: the current task is the waker
    struct task_struct *p = (struct task_struct *)ctx->args[0];
    u32 pid = p->tgid;
    u32 tid = p->pid;
    u64 *tsp = start.lookup(&tid);
    if (tsp == 0)
        return 0;  // switched out before tracing began
    u64 delta = (bpf_ktime_get_ns() - *tsp) / 1000;
    start.delete(&tid);
    if (FILTER)
        return 0;
    if (delta < MINBLOCK_US || delta > MAXBLOCK_US)
        return 0;
    struct key_t key = {};
    key.w_k_stack_id = stack_traces.get_stackid(ctx, 0);
    bpf_probe_read_kernel_str(&key.target, sizeof(key.target), p->comm);
    bpf_get_current_comm(&key.waker, sizeof(key.waker));
    counts.atomic_increment(key, delta);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("wakeuptime", "Summarize sleep to wakeup time by waker kernel stack", EXAMPLES)
    p.add_argument("-u", "--useronly", action="store_true", help="user threads only (no kernel threads)")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-v", "--verbose", action="store_true", help="show raw addresses")
    p.add_argument("-f", "--folded", action="store_true", help="output folded format")
    sched_stacks.add_stack_storage_size(p, 1024)
    sched_stacks.add_duration(p)
    sched_stacks.add_block_times(p)
    pictures.add_svg(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    if args.pid:
        condition = f"pid != {args.pid}"
    elif args.useronly:
        condition = "p->flags & PF_KTHREAD"
    else:
        condition = "0"
    return sched_stacks.fill_block_times(BPF_TEXT.replace("FILTER", condition), args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pid and args.useronly:
        parser.error("use either -p or -u.")
    return common.guard("wakeuptime", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), (*sched.SWITCH, ("sched_waking", "on_wakeup")))
    if b is None:
        return 0
    with b:
        if not args.folded:
            print("Tracing blocked time (us) by kernel stack" + sched_stacks.duration_tail(args.duration), flush=True)
        # wakeup time in Gregg's wakeup palette (a blue: time spent waiting)
        svg = pictures.flame_sink(
            args, "wakeuptime", title="Wakeup Time Flame Graph", count_name="us", palette="wakeup"
        )
        sched_stacks.trace_then_report(args, lambda: time.sleep(args.duration), lambda: report(b, args, svg))
        if not args.folded:
            print("Detaching...")
        if svg is not None:
            svg.write()
    return 0


def report(b: BPF, args: argparse.Namespace, svg: pictures.FlameSink | None = None) -> None:
    stacks = b["stack_traces"]
    missing = 0
    for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value):
        if k.w_k_stack_id == -errno.ENOMEM:
            missing += 1
            continue
        # innermost first, from the function that woke the thread (not the tracepoint's dispatch)
        addrs = [] if k.w_k_stack_id < 0 else list(stacks.walk(k.w_k_stack_id))
        while addrs and b.ksym(addrs[0]).startswith(sched_stacks.TRACING_FRAMES):
            addrs.pop(0)
        # waker at the root, its stack from the wakeup outwards, the woken thread on top (as bcc)
        folded = [k.waker, *(b.ksym(a) for a in addrs), k.target]
        if svg is not None:
            svg.add([f.decode("utf-8", "replace") for f in folded], v.value)
        if args.folded:
            printb(b"%s %d" % (b";".join(folded), v.value))
        else:
            printb(b"    %-16s %s" % (b"target:", k.target))
            for a in reversed(addrs):
                printb(b"    %-16x %s" % (a, b.ksym(a)))
            printb(b"    %-16s %s" % (b"waker:", k.waker))
            print("        %d\n" % v.value)
    b["counts"].clear()
    if missing:
        print(
            "WARNING: %d stack traces could not be displayed. Consider increasing --stack-storage-size." % missing,
            file=sys.stderr,
        )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
