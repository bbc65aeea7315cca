#!/usr/bin/env python3
"""offwaketime: summarize blocked time by the blocked thread's stacks and the stacks of its waker.

From raw tracepoints: sched_switch, where the thread switched out is still the current one, gives
its stacks as it blocks (kept until it runs again, when its time off the CPU is added); sched_waking,
fired in try_to_wake_up() by the waker itself, gives the waker's stacks. bcc uses kprobes on
finish_task_switch() (the blocked thread's stacks as it resumes: the same ones) and try_to_wake_up()
(the moment sched_waking marks).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import common, offcpu, pictures, sched, sched_stacks

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool offwaketime             # trace off-CPU + waker stack time until Ctrl-C
    rbcc tool offwaketime 5           # trace for 5 seconds only
    rbcc tool offwaketime -f 5        # 5 seconds, and output in folded format
    rbcc tool offwaketime --svg ow.svg 5   # 5 seconds, drawn as an off-wake flame graph
    rbcc tool offwaketime -m 1000     # trace only events that last more than 1000 usec
    rbcc tool offwaketime -M 9000     # trace only events that last less than 9000 usec
    rbcc tool offwaketime -p 185      # only trace threads for PID 185
    rbcc tool offwaketime -t 188      # only trace thread 188
    rbcc tool offwaketime -u          # only trace user threads (no kernel)
    rbcc tool offwaketime -k          # only trace kernel threads (no user)
    rbcc tool offwaketime -U          # only show user space stacks (no kernel)
    rbcc tool offwaketime -K          # only show kernel space stacks (no user)
"""

BPF_TEXT = r"""
#include <linux/sched.h>

struct key_t {
    char waker[TASK_COMM_LEN];
    char target[TASK_COMM_LEN];
    s64 w_k_stack_id;
    s64 w_u_stack_id;
    s64 t_k_stack_id;
    s64 t_u_stack_id;
    u64 t_pid;
    u64 t_tgid;
    u32 w_pid;
    u32 w_tgid;
};

// a thread off the CPU: since when, and the stacks it blocked in
struct blocked_t {
    u64 ts;
    s64 k_stack_id;
    s64 u_stack_id;
};

struct wokeby_t {
    char name[TASK_COMM_LEN];
    s64 k_stack_id;
    s64 u_stack_id;
    u32 w_pid;
    u32 w_tgid;
};

BPF_HASH(counts, struct key_t);
BPF_HASH(start, u32, struct blocked_t, 10240);
BPF_HASH(wokeby, u32, struct wokeby_t, 10240);
BPF_STACK_TRACE(stack_traces, STACK_STORAGE_SIZE);

// sched_waking(struct task_struct *p), in the waker
int on_waking(struct bpf_raw_tracepoint_args *ctx)
{
    struct task_struct *p = (struct task_struct *)ctx->args[0];
    u32 pid = p->pid;
    u32 tgid = p->tgid;
    if (!((THREAD_FILTER) && (STATE_FILTER)))
        return 0;
    struct wokeby_t woke = {};
    bpf_get_current_comm(&woke.name, sizeof(woke.name));
    woke.k_stack_id = KERNEL_STACK_GET;
    woke.u_stack_id = USER_STACK_GET;
    u64 id = bpf_get_current_pid_tgid();
    woke.w_pid = (u32)id;
    woke.w_tgid = id >> 32;
    wokeby.update(&pid, &woke);
    return 0;
}

// sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...)
int on_switch(struct bpf_raw_tracepoint_args *ctx)
{
    struct task_struct *p = (struct task_struct *)ctx->args[1];
    struct task_struct *next = (struct task_struct *)ctx->args[2];
    u32 pid = p->pid;
    u32 tgid = p->tgid;
    u64 ts = bpf_ktime_get_ns();
    if ((THREAD_FILTER) && (STATE_FILTER)) {
        // prev is still the current task: these are the stacks it blocks in
        struct blocked_t b = {.ts = ts, .k_stack_id = KERNEL_STACK_GET, .u_stack_id = USER_STACK_GET};
        start.update(&pid, &b);
    }

    pid = next->pid;
    struct blocked_t *bp = start.lookup(&pid);
    if (bp == 0)
        return 0;  // filtered out, or switched out before tracing began
    struct blocked_t blocked = *bp;
    start.delete(&pid);
    if (ts < blocked.ts)
        return 0;
    u64 delta = (ts - blocked.ts) / 1000;
    if (delta < MINBLOCK_US || delta > MAXBLOCK_US)
        return 0;

    // no waker seen (it woke the thread before tracing began): no waker stacks, which is no error
    struct key_t key = {.w_k_stack_id = -EFAULT, .w_u_stack_id = -EFAULT};
    bpf_probe_read_kernel_str(&key.target, sizeof(key.target), next->comm);
    key.t_pid = pid;
    key.t_tgid = next->tgid;
    key.t_k_stack_id = blocked.k_stack_id;
    key.t_u_stack_id = blocked.u_stack_id;
    struct wokeby_t *woke = wokeby.lookup(&pid);
    if (woke) {
        key.w_k_stack_id = woke->k_stack_id;
        key.w_u_stack_id = woke->u_stack_id;
        key.w_pid = woke->w_pid;
        key.w_tgid = woke->w_tgid;
        __builtin_memcpy(&key.waker, woke->name, TASK_COMM_LEN);
        wokeby.delete(&pid);
    }
    counts.increment(key, delta);
    return 0;
}
"""


def ids_arg(text: str) -> list[int]:
    """bcc's -p/-t: up to five comma-separated ids."""
    ids = []
    for part in text.split(",")[:5]:
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError("must be an integer") from None
        if value < 0:
            raise argparse.ArgumentTypeError("must be positive")
        ids.append(value)
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("offwaketime", "Summarize blocked time by kernel stack trace + waker stack", EXAMPLES)
    threads = p.add_mutually_exclusive_group()
    threads.add_argument(
        "-p", "--pid", metavar="PIDS", dest="tgid", type=ids_arg, help="trace these PIDS only (comma separated)"
    )
    threads.add_argument(
        "-t", "--tid", metavar="TIDS", dest="pid", type=ids_arg, help="trace these TIDS only (comma separated)"
    )
    offcpu.add_options(p, threads)
    return p


def thread_filter(args: argparse.Namespace) -> str:
    """C condition on ``p``, ``pid`` and ``tgid`` for the threads to trace."""
    for field, ids in (("tgid", args.tgid), ("pid", args.pid)):
        if ids is not None:
            return "(" + " || ".join(f"({field} == {i})" for i in ids) + ")"
    if args.user_threads_only:
        return "!(p->flags & PF_KTHREAD)"
    if args.kernel_threads_only:
        return "p->flags & PF_KTHREAD"
    return "1"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return offcpu.fill(BPF_TEXT, args, thread_filter(args), "p")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if offcpu.user_stacks_of_kernel_threads(args):
        return 2
    return common.guard("offwaketime", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = sched.load_attached(args, bpf_text(args), (("sched_waking", "on_waking"), ("sched_switch", "on_switch")))
    if b is None:
        return 0
    with b:
        if not args.folded:
            line = "Tracing blocked time (us) by %s off-CPU and waker stack" % sched_stacks.stack_context(args)
            print(line + sched_stacks.duration_tail(args.duration), flush=True)
        svg = pictures.flame_sink(args, "offwaketime", title="Off-Wake Time Flame Graph", count_name="us", palette="io")
        sched_stacks.trace_then_report(args, lambda: time.sleep(args.duration), lambda: report(b, args, svg))
        if svg is not None:
            svg.write()
    return 0


def _frames(b: BPF, args: argparse.Namespace, k: Any) -> dict[str, list[str]]:
    """The four stacks of key ``k``, innermost frame first (empty where -U/-K leaves one out)."""
    stacks = b["stack_traces"]

    def kernel(stack_id: int) -> list[str]:
        if args.user_stacks_only:
            return []
        frames = sched_stacks.kernel_frames(b, stacks, stack_id, from_tracepoint=True)
        return [f.decode("utf-8", "replace") for f in frames]

    def user(stack_id: int, tgid: int) -> list[str]:
        if args.kernel_stacks_only:
            return []
        return [f.decode("utf-8", "replace") for f in sched_stacks.user_frames(b, stacks, stack_id, tgid)]

    return {
        "w_k": kernel(k.w_k_stack_id),
        "w_u": user(k.w_u_stack_id, k.w_tgid),
        "t_k": kernel(k.t_k_stack_id),
        "t_u": user(k.t_u_stack_id, k.t_tgid),
    }


def _side(args: argparse.Namespace, stack_id: int, frames: list[str], missed: str) -> list[str]:
    return [missed] if sched_stacks.stack_id_err(stack_id) else frames


def folded(args: argparse.Namespace, k: Any, f: dict[str, list[str]]) -> list[str]:
    """bcc's folded frames: the target, its stacks from the root to where it blocked, "--", the
    waker's stacks from where it woke the target back to its root, the waker."""
    both = sched_stacks.both_stacks(args)
    line = [k.target.decode("utf-8", "replace")]
    if not args.kernel_stacks_only:
        line += list(reversed(_side(args, k.t_u_stack_id, f["t_u"], "[Missed User Stack]")))
    if not args.user_stacks_only:
        line += ["-"] if args.delimited and both and k.t_k_stack_id >= 0 and k.t_u_stack_id >= 0 else []
        line += list(reversed(_side(args, k.t_k_stack_id, f["t_k"], "[Missed Kernel Stack]")))
    line.append("--")
    if not args.user_stacks_only:
        line += _side(args, k.w_k_stack_id, f["w_k"], "[Missed Kernel Stack]")
    if not args.kernel_stacks_only:
        line += ["-"] if args.delimited and both and k.w_k_stack_id >= 0 and k.w_u_stack_id >= 0 else []
        line += _side(args, k.w_u_stack_id, f["w_u"], "[Missed User Stack]")
    line.append(k.waker.decode("utf-8", "replace"))
    return line


def print_stacks(args: argparse.Namespace, k: Any, f: dict[str, list[str]], value: int) -> None:
    """bcc's layout: the waker and its stacks from the root, "--", the target's from where it blocked."""
    both = sched_stacks.both_stacks(args)
    print("    %-16s %s %s" % ("waker:", k.waker.decode("utf-8", "replace"), k.w_pid))
    lines: list[str] = []
    if not args.kernel_stacks_only:
        lines += reversed(_side(args, k.w_u_stack_id, f["w_u"], "[Missed User Stack]"))
    if not args.user_stacks_only:
        lines += ["-"] if args.delimited and both and k.w_u_stack_id >= 0 and k.w_k_stack_id >= 0 else []
        lines += reversed(_side(args, k.w_k_stack_id, f["w_k"], "[Missed Kernel Stack]"))
    lines.append("%-16s %s" % ("--", "--"))
    if not args.user_stacks_only:
        lines += _side(args, k.t_k_stack_id, f["t_k"], "[Missed Kernel Stack]")
    if not args.kernel_stacks_only:
        lines += ["-"] if args.delimited and both and k.t_u_stack_id >= 0 and k.t_k_stack_id >= 0 else []
        lines += _side(args, k.t_u_stack_id, f["t_u"], "[Missed User Stack]")
    for line in lines:
        print("    %s" % line)
    print("    %-16s %s %s" % ("target:", k.target.decode("utf-8", "replace"), k.t_pid))
    print("        %d\n" % value)


def report(b: BPF, args: argparse.Namespace, svg: pictures.FlameSink | None = None) -> None:
    missing = sched_stacks.Missing(hint_errno=12)  # ENOMEM: the stack map is full
    for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value):
        for stack_id in (k.w_k_stack_id, k.t_k_stack_id) if not args.user_stacks_only else ():
            missing.check(stack_id)
        for stack_id in (k.w_u_stack_id, k.t_u_stack_id) if not args.kernel_stacks_only else ():
            missing.check(stack_id)
        f = _frames(b, args, k)
        line = folded(args, k, f)
        if svg is not None:
            svg.add(line, v.value)
        if args.folded:
            print("%s %d" % (";".join(line), v.value))
        else:
            print_stacks(args, k, f, v.value)
    sys.stdout.flush()
    missing.warn("lost and could not be displayed")


if __name__ == "__main__":
    sys.exit(main())
