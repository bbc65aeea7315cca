#!/usr/bin/env python3
"""profile: profile CPU stack traces at a timed interval.

Samples every CPU with a software cpu-clock perf event and counts (comm, PID, kernel stack, user
stack); prints the stacks at the end, most frequent last, or one folded line per stack (-f) for flame
graphs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, pictures, sched_stacks
from rbcc.containers import filter_by_containers
from rbcc.perf import PerfSWConfig, PerfType

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool profile             # profile stack traces at 49 Hertz until Ctrl-C
    rbcc tool profile -F 99       # profile stack traces at 99 Hertz
    rbcc tool profile -c 1000000  # profile stack traces every 1 in a million events
    rbcc tool profile 5           # profile at 49 Hertz for 5 seconds only
    rbcc tool profile -f 5        # output in folded format for flame graphs
    rbcc tool profile --svg cpu.svg 5   # draw a flame graph of 5 seconds into cpu.svg
    rbcc tool profile -f --inline # and with the functions inlined in user frames
    rbcc tool profile -p 185      # only profile process with PID 185
    rbcc tool profile -L 185      # only profile thread with TID 185
    rbcc tool profile -U          # only show user space stacks (no kernel)
    rbcc tool profile -K          # only show kernel space stacks (no user)
    rbcc tool profile --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool profile --mntnsmap mappath   # only trace mount namespaces in the map
"""

DEFAULT_HZ = 49

BPF_TEXT = r"""
struct key_t {
    u32 pid;
    u64 kernel_ip;
    int user_stack_id;
    int kernel_stack_id;
    char name[TASK_COMM_LEN];
};

BPF_HASH(counts, struct key_t);
BPF_STACK_TRACE(stack_traces, STACK_STORAGE_SIZE);

int do_perf_event(struct bpf_perf_event_data *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u32 pid = id;
    if (IDLE_FILTER)
        return 0;
    if (!(THREAD_FILTER))
        return 0;
    if (container_should_be_filtered())
        return 0;

    struct key_t key;
    __builtin_memset(&key, 0, sizeof(key));  // the padding after pid is part of the key
    key.pid = tgid;
    bpf_get_current_comm(&key.name, sizeof(key.name));
    key.user_stack_id = USER_STACK_GET;
    key.kernel_stack_id = KERNEL_STACK_GET;
    if (key.kernel_stack_id >= 0) {
        // a perf event's kernel stack starts at the caller of the sampled function: keep the sampled
        // IP itself too, when it is a kernel address (the upper half, on 64-bit architectures)
        u64 ip = PT_REGS_IP(&ctx->regs);
        if ((s64)ip < 0)
            key.kernel_ip = ip;
    }
    counts.increment(key);
    return 0;
}
"""


def int_list(text: str) -> list[int]:
    return [common.non_negative_int(v) for v in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("profile", "Profile CPU stack traces at a timed interval", EXAMPLES)
    threads = p.add_mutually_exclusive_group()
    threads.add_argument(
        "-p", "--pid", type=int_list, help="profile process with one or more comma separated PIDs only"
    )
    threads.add_argument("-L", "--tid", type=int_list, help="profile thread with one or more comma separated TIDs only")
    sched_stacks.add_stack_choice(p)
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("-F", "--frequency", type=common.non_negative_int, help="sample frequency, Hertz")
    sampling.add_argument("-c", "--count", type=common.non_negative_int, help="sample period, number of events")
    p.add_argument("-d", "--delimited", action="store_true", help="insert delimiter between kernel/user stacks")
    p.add_argument("-a", "--annotations", action="store_true", help="add _[k] annotations to kernel frames")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle stacks")
    p.add_argument(
        "-f", "--folded", action="store_true", help="output folded format, one line per stack (for flame graphs)"
    )
    sched_stacks.add_inline(p)
    sched_stacks.add_stack_storage_size(p)
    sched_stacks.add_duration(p)
    p.add_argument("-C", "--cpu", type=int, default=-1, help="cpu number to run profile on")
    common.add_containers(p)
    pictures.add_svg(p)
    return p


def thread_filter(args: argparse.Namespace) -> tuple[str, str]:
    """(C condition of the threads to sample, how the header names them)."""
    if args.pid is not None:
        return " || ".join(f"tgid == {p}" for p in args.pid), f"PID {args.pid}"
    if args.tid is not None:
        return " || ".join(f"pid == {t}" for t in args.tid), f"TID {args.tid}"
    return "1", "all threads"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    kernel, user = sched_stacks.stack_getters(args, "&ctx->regs")
    return filter_by_containers(args) + (
        BPF_TEXT.replace("IDLE_FILTER", "0" if args.include_idle else "pid == 0")
        .replace("THREAD_FILTER", thread_filter(args)[0])
        .replace("STACK_STORAGE_SIZE", str(args.stack_storage_size))
        .replace("USER_STACK_GET", user)
        .replace("KERNEL_STACK_GET", kernel)
    )


def sampling(args: argparse.Namespace) -> tuple[int, int]:
    """(sample_freq, sample_period): -F, else -c, else 49 Hz."""
    if args.frequency:
        return args.frequency, 0
    if args.count:
        return 0, args.count
    return DEFAULT_HZ, 0


def header(args: argparse.Namespace) -> str:
    freq, period = sampling(args)
    what = "%d Hertz" % freq if freq else "every %d events" % period
    line = "Sampling at %s of %s by %s stack" % (what, thread_filter(args)[1], sched_stacks.stack_context(args))
    if args.cpu >= 0:
        line += " on CPU#%d" % args.cpu
    return line + sched_stacks.duration_tail(args.duration)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("profile", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        freq, period = sampling(args)
        b.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=PerfSWConfig.CPU_CLOCK,
            fn_name="do_perf_event",
            sample_period=period,
            sample_freq=freq,
            cpu=args.cpu,
        )
        if not args.folded:
            print(header(args), flush=True)
        svg = pictures.flame_sink(args, "profile", title="CPU Flame Graph", count_name="samples")
        sched_stacks.trace_then_report(args, lambda: time.sleep(args.duration), lambda: report(b, args, svg))
        if svg is not None:
            svg.write(header(args))
    return 0


def report(b: BPF, args: argparse.Namespace, svg: pictures.FlameSink | None = None) -> None:
    stacks = b["stack_traces"]
    missing = sched_stacks.Missing()
    for k, v in sorted(b["counts"].items(), key=lambda kv: kv[1].value):
        kernel = sched_stacks.kernel_frames(b, stacks, k.kernel_stack_id, k.kernel_ip, args.annotations)
        user = sched_stacks.user_frames(b, stacks, k.user_stack_id, k.pid, args.inline, args.annotations)
        missing.check_key(args, k)
        sched_stacks.print_stack(args, k, v.value, kernel, user)
        if svg is not None:
            svg.add(sched_stacks.folded_stack(args, k, kernel, user, sched_stacks.both_stacks(args)), v.value)
    missing.warn()


if __name__ == "__main__":
    sys.exit(main())
