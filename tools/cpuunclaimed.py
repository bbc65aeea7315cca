#!/usr/bin/env python3
"""cpuunclaimed: sample CPU run queues and calculate unclaimed idle CPU.

Every CPU is sampled at 99 Hz by a software cpu-clock perf event (bcc uses task-clock), at nearly the
same moment on each; a group of samples taken together shows CPUs idle while others had tasks
queued. The queue length is the CPU run queue's ``nr_running`` (all scheduling classes; bcc reads the
CFS queue's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rbcc._tools import common
from rbcc.perf import PerfSWConfig, PerfType

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool cpuunclaimed            # sample and calculate unclaimed idle CPUs,
                                      # output every 1 second (default)
    rbcc tool cpuunclaimed 5 10       # print 5 second summaries, 10 times
    rbcc tool cpuunclaimed -T 1       # 1s summaries and timestamps
    rbcc tool cpuunclaimed -j         # raw dump of all samples (verbose), CSV
"""

FREQUENCY = 99
WAKEUP_S = 0.1  # read the buffers 10 times a second: fewer wakeups than one per sample
TRIGGER_NS = int(0.8 * (1_000_000_000 / FREQUENCY))  # a gap this long starts the next group

BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u64 ts;
    u64 cpu;
    u64 len;
};

BPF_PERF_OUTPUT(events);

int do_perf_event(struct bpf_perf_event_data *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct data_t data = {};
    data.ts = bpf_ktime_get_ns();
    data.cpu = bpf_get_smp_processor_id();
    // runnable tasks on this CPU, the running one included
    data.len = task->se.cfs_rq->rq->nr_running;
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


class SkewError(Exception):
    """A group's samples spread over more than half the sampling interval."""


@dataclass
class Group:
    """One round of samples, one per CPU, taken at (nearly) the same time: {ts: (cpu, len)}."""

    samples: dict[int, tuple[int, int]] = field(default_factory=dict)

    def stats(self, ncpu: int) -> tuple[int, int, int]:
        """(running, idle, unclaimed): CPUs with a task, CPUs without, and how many of the queued
        tasks the idle CPUs could have run."""
        running = sum(1 for _, n in self.samples.values() if n > 0)
        queued = sum(n - 1 for _, n in self.samples.values() if n > 1)
        idle = ncpu - running
        return running, idle, min(idle, queued) if idle > 0 and queued > 0 else 0

    def span(self) -> int:
        return max(self.samples) - min(self.samples) if self.samples else 0


@dataclass
class Grouper:
    """Splits the stream of samples into groups at gaps longer than ``trigger`` ns (bcc's method: a
    group is complete once the first sample of the next one has arrived)."""

    trigger: int = TRIGGER_NS
    # CPUs a round must cover to count (0: any); the first round after the per-CPU events start, one by
    # one, can miss a CPU, which would read as idle
    ncpu: int = 0
    pending: dict[int, tuple[int, int]] = field(default_factory=dict)
    group: Group = field(default_factory=Group)
    last: int = 0

    def add(self, ts: int, cpu: int, length: int) -> None:
        self.pending[ts] = (cpu, length)

    def complete_groups(self) -> list[Group]:
        done = []
        for ts in sorted(self.pending):
            if ts - self.last > self.trigger:
                if self.group.samples:
                    if self.group.span() > self.trigger / 2:
                        raise SkewError(self.group.span())
                    if len({cpu for cpu, _ in self.group.samples.values()}) >= self.ncpu:
                        done.append(self.group)
                self.group = Group()
                self.last = ts
            self.group.samples[ts] = self.pending[ts]
        self.pending.clear()
        return done


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("cpuunclaimed", "Sample CPU run queues and calculate unclaimed idle CPU", EXAMPLES)
    p.add_argument(
        "-j", "--csv", action="store_true", help="print sample summaries (verbose) as comma-separated values"
    )
    p.add_argument(
        "-J", "--fullcsv", action="store_true", help="print sample summaries with extra fields: CPU sample offsets"
    )
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("interval", nargs="?", type=float, default=None, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=None, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed; no option changes it)."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.csv = args.csv or args.fullcsv
    if args.interval is not None and args.csv:
        print("ERROR: cannot use interval with either -j or -J. Exiting.", file=sys.stderr)
        return 2
    if args.interval is not None and args.interval <= 0:
        print("ERROR: the interval must be positive.", file=sys.stderr)
        return 2
    return common.guard("cpuunclaimed", lambda: run(args))


def csv_header(args: argparse.Namespace, ncpu: int) -> str:
    cols = (["TIME"] if args.timestamp else []) + ["TIMESTAMP_ns"] + [f"CPU{c}" for c in range(ncpu)]
    if args.fullcsv:
        cols += [f"OFFSET_ns_CPU{c}" for c in range(ncpu)]
    return ",".join(cols)


def csv_row(args: argparse.Namespace, group: Group, ncpu: int) -> str:
    lens, offsets = [0] * ncpu, [0] * ncpu
    first = min(group.samples)
    for ts, (cpu, length) in group.samples.items():
        if cpu < ncpu:
            lens[cpu] = length
            offsets[cpu] = ts - first
    cols = (["%-8s" % common.strftime_now()] if args.timestamp else []) + [str(first)] + [str(n) for n in lens]
    if args.fullcsv:
        cols += [str(o) for o in offsets]
    return ",".join(cols)


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    ncpu = multiprocessing.cpu_count()
    interval = args.interval if args.interval is not None else (0.2 if args.csv else 1.0)
    count = args.count
    with b:
        b.attach_perf_event(
            ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="do_perf_event", sample_freq=FREQUENCY
        )
        if args.csv:
            print(csv_header(args, ncpu), flush=True)
        else:
            shown = args.interval if args.interval is not None else 1
            print(
                "Sampling run queues... Output every %s seconds. Hit Ctrl-C to end." % ("%g" % shown),
                flush=True,
            )
        grouper = Grouper(ncpu=ncpu)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            grouper.add(e.ts, e.cpu, e.len)

        b["events"].open_perf_buffer(on_event, page_cnt=64)
        outputs = 0
        exiting = False
        while True:
            slept = 0.0
            while slept < 0.999 * interval and not exiting:
                try:
                    time.sleep(WAKEUP_S)
                except KeyboardInterrupt:
                    exiting = True
                b.perf_buffer_poll(0)
                slept += WAKEUP_S
            b.perf_buffer_poll(0)
            try:
                groups = grouper.complete_groups()
            except SkewError as e:
                print(
                    "ERROR: CPU samples arrived at skewed offsets (CPUs may have powered down when idle), "
                    "spanning %d ns (expected < %d ns). Debug with -J, and see the man page. As output may "
                    "begin to be unreliable, exiting." % (e.args[0], TRIGGER_NS / 2)
                )
                return 1
            report(args, groups, ncpu)
            outputs += 1
            if exiting or (count is not None and outputs >= count):
                return 0


def report(args: argparse.Namespace, groups: list[Group], ncpu: int) -> None:
    if args.csv:
        for g in groups:
            print(csv_row(args, g, ncpu))
        sys.stdout.flush()
        return
    running = idle = positive = 0
    for g in groups:
        r, i, p = g.stats(ncpu)
        running, idle, positive = running + r, idle + i, positive + p
    total = running + idle
    if args.timestamp:
        print("%-8s " % common.strftime_now(), end="")
    util = 100.0 * running / total if total else 0.0
    unclaimed = 100.0 * positive / total if total else 0.0
    print("%%CPU %6.2f%%, unclaimed idle %0.2f%%" % (util, unclaimed), flush=True)


if __name__ == "__main__":
    sys.exit(main())
