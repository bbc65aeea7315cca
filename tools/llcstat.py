#!/usr/bin/env python3
"""llcstat: summarize cache references and misses by PID.

Samples the hardware last-level-cache counters (PERF_COUNT_HW_CACHE_REFERENCES and _MISSES), one
sample every -c events, and adds up each sample's period by process and CPU. Virtual machines
usually have no such counters; the tool then says so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import common
from rbcc.errors import KernelFeatureError
from rbcc.perf import PerfHWConfig, PerfType

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool llcstat            # cache references and misses by PID, for 10 seconds
    rbcc tool llcstat 20         # for 20 seconds
    rbcc tool llcstat -c 1000    # sample one in 1000 events
    rbcc tool llcstat -t         # by PID and TID
"""

BPF_TEXT = r"""
struct key_t {
    int cpu;
    u32 pid;
    u32 tid;
    char name[TASK_COMM_LEN];
};

BPF_HASH(ref_count, struct key_t);
BPF_HASH(miss_count, struct key_t);

static __always_inline void get_key(struct key_t *key)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    key->cpu = bpf_get_smp_processor_id();
    key->pid = pid_tgid >> 32;
    key->tid = GET_TID ? (u32)pid_tgid : key->pid;
    bpf_get_current_comm(&key->name, sizeof(key->name));
}

// each sample stands for sample_period events
int on_cache_miss(struct bpf_perf_event_data *ctx)
{
    struct key_t key = {};
    get_key(&key);
    miss_count.increment(key, ctx->sample_period);
    return 0;
}

int on_cache_ref(struct bpf_perf_event_data *ctx)
{
    struct key_t key = {};
    get_key(&key);
    ref_count.increment(key, ctx->sample_period);
    return 0;
}
"""

NO_COUNTERS = (
    "llcstat: this machine has no hardware cache counters (perf_event_open of PERF_COUNT_HW_CACHE_MISSES "
    "failed: {error}); is this a virtual machine? Run it on bare metal or in a VM with a virtual PMU "
    "(e.g. QEMU/KVM -cpu host)"
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("llcstat", "Summarize cache references and misses by PID", EXAMPLES)
    p.add_argument(
        "-c",
        "--sample_period",
        type=common.positive_int,
        default=100,
        help="Sample one in this many number of cache reference / miss events",
    )
    p.add_argument("duration", nargs="?", type=float, default=10, help="Duration, in seconds, to run")
    p.add_argument("-t", "--tid", action="store_true", help="Summarize cache references and misses by PID/TID")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return BPF_TEXT.replace("GET_TID", "1" if args.tid else "0")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("llcstat", lambda: run(args))


def attach(b: BPF, period: int) -> None:
    for config, fn in ((PerfHWConfig.CACHE_MISSES, "on_cache_miss"), (PerfHWConfig.CACHE_REFERENCES, "on_cache_ref")):
        b.attach_perf_event(ev_type=PerfType.HARDWARE, ev_config=config, fn_name=fn, sample_period=period)


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        try:
            attach(b, args.sample_period)
        except KernelFeatureError as e:
            print(NO_COUNTERS.format(error=str(e).splitlines()[0]), file=sys.stderr)
            return 1
        print("Running for %g seconds or hit Ctrl-C to end." % args.duration, flush=True)
        try:
            time.sleep(args.duration)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, lambda *_: print())
        report(b, args)
    return 0


def report(b: BPF, args: argparse.Namespace) -> None:
    def ident(k: Any) -> tuple[Any, ...]:
        return (k.pid, k.tid, k.cpu, k.name) if args.tid else (k.pid, k.cpu, k.name)

    misses = {ident(k): v.value for k, v in b["miss_count"].items()}
    header = "PID      " + ("TID      " if args.tid else "") + "NAME             CPU     REFERENCE         MISS    HIT%"
    fmt = "{:<8d} " + ("{:<8d} " if args.tid else "") + "{:<16s} {:<4d} {:>12d} {:>12d} {:>6.2f}%"
    print(header)
    tot_ref = tot_miss = 0
    for k, v in b["ref_count"].items():
        miss = misses.get(ident(k), 0)
        tot_ref += v.value
        tot_miss += miss
        # sampling can count more misses than references for a process
        hit = v.value - miss if v.value >= miss else 0
        ids = [k.pid, k.tid] if args.tid else [k.pid]
        print(fmt.format(*ids, k.name.decode("utf-8", "replace"), k.cpu, v.value, miss, 100.0 * hit / v.value))
    rate = 100.0 * (tot_ref - tot_miss) / tot_ref if tot_ref else 0.0
    print(f"Total References: {tot_ref} Total Misses: {tot_miss} Hit Rate: {rate:.2f}%")


if __name__ == "__main__":
    sys.exit(main())
