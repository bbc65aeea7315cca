#!/usr/bin/env python3
"""cpufreq: sample CPU frequency system-wide and by process: how many samples ran at which frequency.

As libbpf-tools' cpufreq: each CPU's current frequency is read from cpufreq's sysfs at start, then
kept up to date from the power:cpu_frequency tracepoint; a software perf event samples every CPU
(99 times a second by default) and counts the sample in a linear histogram (200 MHz buckets) of
the frequency its CPU runs at, system-wide and per command name. A machine without cpufreq (most
virtual machines: no /sys/devices/system/cpu/cpu0/cpufreq) has no frequency to read: the tool says
so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, sched
from rbcc.errors import KernelFeatureError
from rbcc.perf import PerfSWConfig, PerfType
from rbcc.utils import get_online_cpus

__all__ = ["bpf_text", "build_parser", "main", "print_linear"]

EXAMPLES = """examples:
    rbcc tool cpufreq         # sample CPU freq at 99HZ (default)
    rbcc tool cpufreq -d 5    # sample for 5 seconds only
    rbcc tool cpufreq -f 199  # sample CPU freq at 199HZ
"""

STEP_MHZ = 200
SLOTS = 26  # 0 to 5000 MHz and above
MAX_CPUS = 1024
CPUFREQ = "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq"

BPF_TEXT = r"""
#include <linux/sched.h>

struct key_t {
    char comm[TASK_COMM_LEN];
    u64 slot;
};

BPF_ARRAY(freqs_mhz, u32, MAX_CPUS);
BPF_HISTOGRAM(syswide, u64, SLOTS);
BPF_HISTOGRAM(hists, struct key_t, 10240);

TRACEPOINT_PROBE(power, cpu_frequency) {
    u32 cpu = args->cpu_id;
    u32 mhz = args->state / 1000;  // kHz
    freqs_mhz.update(&cpu, &mhz);
    return 0;
}

int do_sample(struct bpf_perf_event_data *ctx) {
    u32 cpu = bpf_get_smp_processor_id();
    u32 *mhz = freqs_mhz.lookup(&cpu);
    if (mhz == 0 || *mhz == 0)
        return 0;
    u64 slot = *mhz / STEP_MHZ;
    if (slot >= SLOTS)
        slot = SLOTS - 1;
    syswide.atomic_increment(slot);
    if ((u32)bpf_get_current_pid_tgid() == 0)
        return 0;  // idle
    struct key_t key = {.slot = slot};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    hists.atomic_increment(key);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("cpufreq", "Sampling CPU freq system-wide & by process. Ctrl-C to end.", EXAMPLES)
    p.add_argument("-d", "--duration", type=common.positive_int, help="Duration to sample in seconds")
    p.add_argument(
        "-f", "--frequency", type=common.positive_int, default=99, help="Sample with a certain frequency (Hz)"
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); -f and -d change the sampling, not the program."""
    return BPF_TEXT.replace("MAX_CPUS", str(MAX_CPUS)).replace("STEP_MHZ", str(STEP_MHZ)).replace("SLOTS", str(SLOTS))


def current_mhz(cpus: Sequence[int]) -> dict[int, int]:
    """Each CPU's frequency (MHz) from cpufreq's sysfs; KernelFeatureError (one line) without cpufreq."""
    freqs = {}
    for cpu in cpus:
        try:
            with open(CPUFREQ % cpu) as f:
                freqs[cpu] = int(f.read()) // 1000
        except (OSError, ValueError):
            raise KernelFeatureError(
                "needs cpufreq to know the CPUs' frequencies, and this machine has none (no %s): "
                "a virtual machine's CPUs usually do not expose theirs" % os.path.dirname(CPUFREQ % cpu),
                feature="cpufreq",
            ) from None
    return freqs


def print_linear(label: str, counts: dict[int, int]) -> None:
    """One linear histogram of samples by frequency bucket (MHz), libbpf-tools' layout."""
    if not counts:
        return
    print("     %-13s : count     distribution" % label)
    total_max = max(counts.values())
    for slot in range(min(counts), max(counts) + 1):
        n = counts.get(slot, 0)
        stars = int(40 * n / total_max) if total_max else 0
        print("        %-10d : %-8d |%-40s|" % (slot * STEP_MHZ, n, "*" * stars))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("cpufreq", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args))
        return 0
    cpus = get_online_cpus()
    start = current_mhz(cpus)
    b = BPF(text=bpf_text(args))
    with b:
        freqs = b["freqs_mhz"]
        for cpu, mhz in start.items():
            freqs[freqs.Key(cpu)] = freqs.Leaf(mhz)
        b.attach_perf_event(
            ev_type=PerfType.SOFTWARE,
            ev_config=PerfSWConfig.CPU_CLOCK,
            fn_name="do_sample",
            sample_freq=args.frequency,
        )
        print("Sampling CPU freq system-wide & by process. Ctrl-C to end.", flush=True)
        try:
            time.sleep(args.duration if args.duration else sched.FOREVER)
        except KeyboardInterrupt:
            pass
        print()
        per_comm: dict[bytes, dict[int, int]] = defaultdict(dict)
        for k, v in b["hists"].items():
            per_comm[k.comm][k.slot] = v.value
        for comm in sorted(per_comm):
            print_linear(comm.decode("utf-8", "replace"), per_comm[comm])
            print()
        print()
        syswide = {k.value: v.value for k, v in b["syswide"].items() if v.value}
        print_linear("syswide", syswide)
    return 0


if __name__ == "__main__":
    sys.exit(main())
