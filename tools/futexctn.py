#!/usr/bin/env python3
"""futexctn: summarize futex contention latency as a histogram, per lock and waiting user stack.

From the futex syscall's tracepoints, as libbpf-tools' futexctn: a FUTEX_WAIT (its private and
realtime-clock variants too) is timed from sys_enter_futex to sys_exit_futex, and counted by thread,
lock address and user stack (by process and lock with -s), when it returned without an error (a
wait that found the lock's word changed, or timed out, is not contention that ended).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tables import hist
from rbcc._tools import common, proc, sched, sched_stacks

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool futexctn              # summarize futex contention latency as a histogram
    rbcc tool futexctn 1 10         # print 1 second summaries, 10 times
    rbcc tool futexctn -mT 1        # 1s summaries, milliseconds, and timestamps
    rbcc tool futexctn -s 1         # 1s summaries, without stack traces
    rbcc tool futexctn -l 0x8187bb8 # only trace lock 0x8187bb8
    rbcc tool futexctn -p 123       # only trace threads for PID 123
    rbcc tool futexctn -t 125       # only trace thread 125
"""

SLOTS = 32

BPF_TEXT = r"""
#include <linux/sched.h>

#define FUTEX_WAIT 0
#define FUTEX_CMD_MASK ~(128 | 256)  // FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME
#define SLOTS 32

struct waiting_t {
    u64 ts;
    u64 uaddr;
};

struct hist_key {
    u64 pid_tgid;
    u64 uaddr;
    s64 user_stack_id;
};

struct hist_t {
    u64 slots[SLOTS];
    u64 contended;
    u64 total_elapsed;
    u64 min;
    u64 max;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(start, u64, struct waiting_t, 10240);
BPF_HASH(hists, struct hist_key, struct hist_t, 10240);
BPF_STACK_TRACE(stackmap, STACK_STORAGE_SIZE);

TRACEPOINT_PROBE(syscalls, sys_enter_futex) {
    if ((args->op & FUTEX_CMD_MASK) != FUTEX_WAIT)
        return 0;
TASK_IDS
    if (SKIP)
        return 0;
    struct waiting_t w = {.uaddr = (u64)args->uaddr};
    if (LOCK_SKIP)
        return 0;
    w.ts = bpf_ktime_get_ns();
    start.update(&id, &w);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_futex) {
    u64 id = bpf_get_current_pid_tgid();
    struct waiting_t *w = start.lookup(&id);
    if (w == 0)
        return 0;
    u64 now = bpf_ktime_get_ns();
    if (args->ret < 0 || now < w->ts) {
        start.delete(&id);
        return 0;
    }
    u64 delta = (now - w->ts) / UNIT_NS;
    struct hist_key key = {.pid_tgid = id, .uaddr = w->uaddr};
    STACK_OR_PROCESS
    start.delete(&id);
    struct hist_t zero = {}, *h = hists.lookup_or_try_init(&key, &zero);
    if (h == 0)
        return 0;
    u64 slot = bpf_log2l(delta);
    if (slot >= SLOTS)
        slot = SLOTS - 1;
    __sync_fetch_and_add(&h->slots[slot], 1);
    __sync_fetch_and_add(&h->contended, 1);
    __sync_fetch_and_add(&h->total_elapsed, delta);
    // racy between CPUs, as libbpf-tools' compare-and-swap: a bound may miss a concurrent wait
    if (h->min == 0 || h->min > delta)
        h->min = delta;
    if (h->max < delta)
        h->max = delta;
    bpf_get_current_comm(&h->comm, sizeof(h->comm));
    return 0;
}
"""


def lock_arg(text: str) -> int:
    try:
        value = int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"Invalid lock: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"Invalid lock: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("futexctn", "Summarize futex contention latency as a histogram.", EXAMPLES)
    p.add_argument("-p", "--pid", type=common.positive_int, help="Trace this PID only")
    p.add_argument("-t", "--tid", type=common.positive_int, help="Trace this TID only")
    p.add_argument("-l", "--lock", type=lock_arg, help="Trace this lock only (an address, in hex)")
    p.add_argument("-T", "--timestamp", action="store_true", help="Include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="Millisecond histogram")
    p.add_argument("-s", "--summary", action="store_true", help="Summary futex contention latency (no stacks)")
    sched_stacks.add_stack_storage_size(p, 1024)
    sched.add_interval_count(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    skip = proc.skip_condition(pid=args.pid, tid=args.tid)
    if args.summary:
        keyed = "key.pid_tgid >>= 32;  // by process, no stack"
    else:
        keyed = "key.user_stack_id = stackmap.get_stackid(args, BPF_F_USER_STACK);"
    return (
        BPF_TEXT.replace("TASK_IDS", "    u64 id = bpf_get_current_pid_tgid();\n    u32 pid = id >> 32, tid = (u32)id;")
        .replace("LOCK_SKIP", f"w.uaddr != {args.lock:#x}ULL" if args.lock else "0")
        .replace("SKIP", skip)
        .replace("UNIT_NS", "1000000" if args.milliseconds else "1000")
        .replace("STACK_OR_PROCESS", keyed)
        .replace("STACK_STORAGE_SIZE", str(args.stack_storage_size))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("futexctn", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        units = "msecs" if args.milliseconds else "usecs"
        print("Summarize futex contention latency... Hit Ctrl-C to end.", flush=True)
        hists, stacks = b["hists"], b["stackmap"]

        def show() -> None:
            for k, v in sorted(hists.items(), key=lambda kv: (kv[0].pid_tgid, kv[0].uaddr)):
                who = k.pid_tgid if args.summary else k.pid_tgid & 0xFFFFFFFF
                print("\n")
                print(
                    "%s[%d] lock %#x contended %d times, %d avg %s [max: %d %s, min %d %s]"
                    % (
                        v.comm.decode("utf-8", "replace"),
                        who,
                        k.uaddr,
                        v.contended,
                        v.total_elapsed // max(v.contended, 1),
                        units,
                        v.max,
                        units,
                        v.min,
                        units,
                    )
                )
                if not args.summary:
                    print("    -")
                    if k.user_stack_id < 0:
                        print("    [Missed User Stack]")
                    else:
                        for addr in stacks.walk(k.user_stack_id):
                            print("    %s" % b.sym(addr, k.pid_tgid >> 32).decode("utf-8", "replace"))
                    print("    -")
                hist.print_log2_hist(list(v.slots), units)
            hists.clear()
            stacks.clear()
            sys.stdout.flush()

        sched.print_intervals(args, show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
