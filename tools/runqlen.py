#!/usr/bin/env python3
"""runqlen: summarize scheduler run queue length as a histogram.

Samples each CPU at 99 Hz (a software cpu-clock perf event) and reads how many tasks its run queue
holds besides the one running. bcc reads the CFS queue of the sampled task (``se.cfs_rq->nr_running``,
a field renamed ``nr_queued`` in Linux 6.14); this reads that queue's CPU run queue
(``se.cfs_rq->rq->nr_running``), which counts runnable tasks of every scheduling class on the CPU.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common, sched
from rbcc.export import Attach, Histogram, Label, Program
from rbcc.perf import PerfSWConfig, PerfType

__all__ = ["bpf_text", "build_parser", "export_metrics", "main"]

EXAMPLES = """examples:
    rbcc tool runqlen            # summarize run queue length as a histogram
    rbcc tool runqlen 1 10       # print 1 second summaries, 10 times
    rbcc tool runqlen -T 1       # 1s summaries and timestamps
    rbcc tool runqlen -O         # report run queue occupancy
    rbcc tool runqlen -C         # show each CPU separately
"""

FREQUENCY = 99  # Hz: off the beat of timers that tick at round rates

BPF_TEXT = r"""
#include <linux/sched.h>

typedef struct cpu_key {
    int cpu;
    unsigned int slot;
} cpu_key_t;

STORAGE

int do_perf_event(struct bpf_perf_event_data *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    unsigned int len = task->se.cfs_rq->rq->nr_running;
    // the running task is not waiting: 0 is an idle or uncontended CPU
    if (len > 0)
        len--;
    STORE
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("runqlen", "Summarize scheduler run queue length as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-O", "--runqocc", action="store_true", help="report run queue occupancy")
    p.add_argument("-C", "--cpus", action="store_true", help="print output for each CPU separately")
    sched.add_interval_count(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    if args.cpus:
        storage = "BPF_HISTOGRAM(dist, cpu_key_t);"
        store = "cpu_key_t key = {.cpu = bpf_get_smp_processor_id(), .slot = len}; dist.increment(key);"
    else:
        storage = "BPF_HISTOGRAM(dist, unsigned int);"
        store = "dist.atomic_increment(len);"
    return BPF_TEXT.replace("STORAGE", storage).replace("STORE", store)


def occupancy(samples: dict[int, int]) -> float:
    """The percentage of samples {queue length: count} that found anything queued."""
    total = sum(samples.values())
    return 100.0 * (total - samples.get(0, 0)) / total if total else 0.0


def print_occupancy(dist: object, per_cpu: bool) -> None:
    items = [(k, v.value) for k, v in dist.items()]  # type: ignore[attr-defined]
    if not per_cpu:
        print("runqocc: %0.2f%%" % occupancy({k.value: n for k, n in items}))
        return
    by_cpu: dict[int, dict[int, int]] = {}
    for k, n in items:
        by_cpu.setdefault(k.cpu, {})[k.slot] = n
    for cpu in range(max(by_cpu, default=-1) + 1):
        print("runqocc, CPU %-3d %6.2f%%" % (cpu, occupancy(by_cpu.get(cpu, {}))))


def export_metrics(args: argparse.Namespace) -> Program:
    """``rbcc export --tool runqlen``: run queue length sampled at 99 Hz (per CPU under -C); lengths past
    31 count in the +Inf bucket."""
    labels = (Label("cpu", "cpu"),) if args.cpus else ()
    length = Histogram("dist", "rbcc_runqlen", "Run queue length, sampled", labels, kind="linear", max_slot=31)
    sample = Attach("perf_event", "software:cpu_clock", "do_perf_event", {"sample_freq": FREQUENCY})
    return Program("runqlen", bpf_text(args), attach=(sample,), metrics=(length,))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("runqlen", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        b.attach_perf_event(
            ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="do_perf_event", sample_freq=FREQUENCY
        )
        print("Sampling run queue length... Hit Ctrl-C to end.", flush=True)
        dist = b["dist"]

        def show() -> None:
            if args.runqocc:
                print_occupancy(dist, args.cpus)
            else:
                dist.print_linear_hist("runqlen", "cpu")
            dist.clear()

        sched.print_intervals(args, show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
