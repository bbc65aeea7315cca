#!/usr/bin/env python3
"""klockstat: kernel lock waits, by the code that waited: count, average, maximum and total.

bcc times every mutex_lock call with kprobes (its wait, "spin") and the hold until mutex_unlock. Here
the lock tracepoints stand in (Linux 5.19 and later): lock:contention_begin and lock:contention_end
bracket each wait for a lock that was taken (the first begin of a wait to its end), so only
contended acquisitions are counted, and each one's whole wait, optimistic spinning included. No
tracepoint marks a release, so hold times are not measured: only the wait table is printed. Mutexes
only, as bcc; -A adds every lock the kernel reports contention on (spinlocks, rwlocks, rwsems,
semaphores, per-CPU rwsems, rt-mutexes). The caller is the first frame of the waiting stack outside
the locking code.
"""

from __future__ import annotations

import argparse
import errno
import re
import sys
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import common, proc

__all__ = ["bpf_text", "build_parser", "caller_frames", "main"]

EXAMPLES = """examples:
    rbcc tool klockstat                           # trace system wide
    rbcc tool klockstat -d 5                      # trace for 5 seconds only
    rbcc tool klockstat -i 5                      # display stats every 5 seconds
    rbcc tool klockstat -p 123                    # trace locks for PID 123
    rbcc tool klockstat -t 321                    # trace locks for TID 321
    rbcc tool klockstat -c pipe_                  # display stats only for lock callers with 'pipe_' substring
    rbcc tool klockstat -S acq_count              # sort lock acquired results on acquired count
    rbcc tool klockstat -n 3                      # display 3 locks
    rbcc tool klockstat -s 3                      # display 3 levels of stack
    rbcc tool klockstat -A                        # every kind of lock, not only mutexes
"""

LCB_F_MUTEX = 1 << 5  # contention_begin's flag for a mutex (include/trace/events/lock.h)

BPF_TEXT = r"""
struct wait_key_t {
    u64 tid;
    u64 lock;
};

struct wait_t {
    u64 ts;
    s64 stackid;
};

BPF_HASH(waiting, struct wait_key_t, struct wait_t, 10240);
BPF_HASH(aq_report_count, int, u64);
BPF_HASH(aq_report_max, int, u64);
BPF_HASH(aq_report_total, int, u64);
BPF_STACK_TRACE(stack_traces, STACK_STORAGE_SIZE);

TRACEPOINT_PROBE(lock, contention_begin) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    u32 tid = (u32)id;
    if (FILTER || LOCK_KIND_FILTER)
        return 0;
    struct wait_key_t key = {.tid = tid, .lock = (u64)args->lock_addr};
    struct wait_t wait = {.ts = bpf_ktime_get_ns(), .stackid = stack_traces.get_stackid(args, 0)};
    // a mutex's wait begins twice (spinning, then sleeping): the first begin is the wait's start
    waiting.insert(&key, &wait);
    return 0;
}

TRACEPOINT_PROBE(lock, contention_end) {
    u64 id = bpf_get_current_pid_tgid();
    struct wait_key_t key = {.tid = (u32)id, .lock = (u64)args->lock_addr};
    struct wait_t *wait = waiting.lookup(&key);
    if (!wait)
        return 0;
    u64 delta = bpf_ktime_get_ns() - wait->ts;
    int stackid = (int)wait->stackid;
    waiting.delete(&key);
    u64 zero = 0;
    u64 *count = aq_report_count.lookup_or_try_init(&stackid, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    u64 *total = aq_report_total.lookup_or_try_init(&stackid, &zero);
    if (total)
        __sync_fetch_and_add(total, delta);
    u64 *max = aq_report_max.lookup(&stackid);
    if (!max || *max < delta)
        aq_report_max.update(&stackid, &delta);
    return 0;
}
"""

# the locking code's own functions, which the waiting stack starts in (the caller comes after them)
LOCK_INTERNALS = re.compile(
    r"^_*(raw_)?(mutex_lock|mutex_spin|spin_lock|read_lock|write_lock|down|rwsem_|queued_|native_queued|"
    r"pv_queued|percpu_down|percpu_rwsem|rt_mutex|rtlock|rwbase|ww_mutex|osq_lock|schedule_preempt_disabled|"
    r"schedule$|preempt_schedule)"
)


DESCRIPTION = (
    "Display kernel lock waits\n\n"
    "Counted at the lock:contention_begin/contention_end tracepoints, not with bcc's kprobes on\n"
    "mutex_lock: only contended acquisitions are counted, and hold times (which need mutex_unlock)\n"
    "are not measured."
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("klockstat", DESCRIPTION, EXAMPLES)
    when = p.add_mutually_exclusive_group()
    when.add_argument("-d", "--duration", type=common.positive_int, help="total duration of trace in seconds")
    when.add_argument("-i", "--interval", type=common.positive_int, help="print summary at this interval (seconds)")
    p.add_argument("-n", "--locks", type=common.positive_int, default=99999999, help="print given number of locks")
    p.add_argument("-s", "--stacks", type=common.positive_int, default=1, help="print given number of stack entries")
    p.add_argument("-c", "--caller", help="print locks taken by given caller")
    p.add_argument(
        "-S",
        "--sort",
        help="sort data on <aq_field>, fields: acq_[max|total|count] (hld_* are accepted: no hold times here)",
    )
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-t", "--tid", type=int, help="trace this TID only")
    p.add_argument(
        "--stack-storage-size",
        default=16384,
        type=common.positive_int,
        help="the number of unique stack traces that can be stored and displayed (default 16384)",
    )
    p.add_argument("-A", "--all-locks", action="store_true", help="every kind of lock, not only mutexes")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed). A TID trumps a PID, as in bcc."""
    filt = proc.skip_condition(pid=args.pid, tid=args.tid)
    return (
        BPF_TEXT.replace("LOCK_KIND_FILTER", "0" if args.all_locks else f"!(args->flags & {LCB_F_MUTEX})")
        .replace("FILTER", filt)
        .replace("STACK_STORAGE_SIZE", str(int(args.stack_storage_size)))
    )


def sort_field(sort: str | None) -> str:
    """The report map to sort on: bcc takes the first field of -S that it knows."""
    for field in (sort or "acq_max").split(","):
        kind = field.removeprefix("acq_").removeprefix("hld_")
        if field != kind and kind in ("max", "total", "count"):
            return kind
    raise ValueError(f"Wrong sort argument: {sort}")


def bare(symbol: str) -> str:
    """A kernel symbol's name without its offset and compiler suffixes (``__mutex_lock.constprop.0+0x1``)."""
    return symbol.split("+", 1)[0].split(".", 1)[0]


def caller_frames(symbols: list[str]) -> list[str]:
    """The waiting stack from its caller on: the locking code's frames at its top left out."""
    at = 0
    while at < len(symbols) - 1 and LOCK_INTERNALS.match(bare(symbols[at])):
        at += 1
    return symbols[at:]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        sort_field(args.sort)
    except ValueError as e:
        print(e)
        return 1
    return common.guard("klockstat", lambda: run(args))


def display(b: BPF, args: argparse.Namespace, state: dict[str, Any]) -> None:
    reports = {kind: b[f"aq_report_{kind}"] for kind in ("count", "max", "total")}
    stacks = b["stack_traces"]
    values = {kind: {k.value: v.value for k, v in table.items()} for kind, table in reports.items()}
    order = sorted(values[sort_field(args.sort)].items(), key=lambda kv: kv[1], reverse=True)
    print("\n%40s %10s %6s %10s %10s" % ("Caller", "Avg Spin", "Count", "Max spin", "Total spin"))
    shown = 0
    for stackid, _ in order:
        if shown >= args.locks:
            break
        count = values["count"].get(stackid, 0)
        if not count:
            continue
        frames: list[str] = []
        caller = "[Missed Kernel Stack]"
        if stackid >= 0:
            symbols = [b.ksym(a, show_offset=True).decode("utf-8", "replace") for a in stacks.walk(stackid)]
            frames = caller_frames(symbols)
            caller = frames[0] if frames else caller
        else:
            state["missing"] += stackid != -errno.EFAULT
            state["enomem"] = state["enomem"] or stackid == -errno.ENOMEM
        if args.caller and args.caller not in caller:
            continue
        total, most = values["total"].get(stackid, 0), values["max"].get(stackid, 0)
        print("%40s %10d %6d %10d %10d" % (caller, total // count, count, most, total))
        for frame in frames[1 : args.stacks]:
            print("%40s" % frame)
        shown += 1
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    state: dict[str, Any] = {"missing": 0, "enomem": False}
    with b:
        print("Tracing lock events... Hit Ctrl-C to end.", flush=True)
        if args.interval:
            for last in common.intervals(args.interval, None):
                display(b, args, state)
                if last:
                    break
                for name in ("stack_traces", "aq_report_count", "aq_report_max", "aq_report_total"):
                    b[name].clear()
        else:
            for _ in common.intervals(args.duration or 99999999, 1):
                pass
            display(b, args, state)
    if state["missing"]:
        hint = " Consider increasing --stack-storage-size." if state["enomem"] else ""
        print(f"WARNING: {state['missing']} stack traces lost and could not be displayed.{hint}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
