#!/usr/bin/env python3
"""bpftop: the loaded BPF programs' run time, run counts and CPU share, top-style.

Like Netflix's bpftop: while it runs, it holds the descriptor of BPF_ENABLE_STATS, which makes the
kernel count every program's runs (run_cnt) and time (run_time_ns); each interval it reads them for
every loaded program (BPF_PROG_GET_NEXT_ID, then the program's info) and shows what changed:
PERIOD-AVG-RUNTIME(ns) is the time per run in the interval, EVENTS/s the runs per second, CPU% the run
time's share of all online CPUs' time. Names are whole (the kernel keeps 15 characters; the rest
comes from the program's BTF, as bpftool shows them). Stats stop when it ends, unless another process
holds them on. It loads no BPF program of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from rbcc._tools import block, common

__all__ = ["Row", "bpf_text", "build_parser", "main", "rows"]

EXAMPLES = """examples:
    rbcc tool bpftop              # BPF programs' run time, 1 second refresh
    rbcc tool bpftop -C           # don't clear the screen
    rbcc tool bpftop -s events    # busiest programs by runs per second first
    rbcc tool bpftop -i 5 10      # 5 second summaries, 10 times only
"""


# what the kernel reports per program: id -> (type, name, run_time_ns, run_cnt)
Snapshot = dict[int, tuple[str, str, int, int]]


class Row(NamedTuple):
    id: int
    type: str
    name: str
    runtime_ns: int  # in the interval
    events: int  # runs in the interval
    avg_ns: float
    events_per_s: float
    cpu_percent: float


SORTS: dict[str, Callable[[Row], tuple[float, ...]]] = {
    "cpu": lambda r: (r.runtime_ns, r.events),
    "events": lambda r: (r.events, r.runtime_ns),
    "avg": lambda r: (r.avg_ns, r.events),
    "id": lambda r: (-r.id,),
}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("bpftop", "Display BPF programs' run time and run counts (BPF_ENABLE_STATS)", EXAMPLES)
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=common.positive_int, default=20, help="maximum rows to print, default 20")
    p.add_argument(
        "-s", "--sort", default="cpu", choices=sorted(SORTS), help="sort column (cpu: run time), default cpu"
    )
    p.add_argument(
        "-i", "--interval", type=common.positive_int, default=1, help="output interval, in seconds, default 1"
    )
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """bpftop loads no BPF program: its C is empty (``--ebpf`` prints nothing)."""
    return ""


def rows(before: Snapshot, after: Snapshot, elapsed_s: float, cpus: int) -> list[Row]:
    """A row per program loaded at the end of the interval: what it ran in the interval (all of its
    counts for a program loaded during it)."""
    out = []
    for prog_id, (kind, name, runtime, count) in after.items():
        _, _, runtime0, count0 = before.get(prog_id, (kind, name, 0, 0))
        d_runtime, d_count = max(runtime - runtime0, 0), max(count - count0, 0)
        out.append(
            Row(
                prog_id,
                kind,
                name,
                d_runtime,
                d_count,
                d_runtime / d_count if d_count else 0.0,
                d_count / elapsed_s,
                100.0 * d_runtime / (elapsed_s * 1e9 * cpus),
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("bpftop", lambda: run(args))


class Names:
    """Programs' whole names, read from their BTF once per program."""

    def __init__(self) -> None:
        self.known: dict[int, str] = {}

    def __call__(self, prog_id: int, short: str) -> str:
        from rbcc import _core

        if len(short) < 15:  # the kernel cut nothing
            return short
        if prog_id not in self.known:
            self.known[prog_id] = _core.prog_full_name(prog_id) or short
        return self.known[prog_id]


def snapshot(names: Names) -> Snapshot:
    from rbcc import _core

    return {i: (kind, names(i, name), rt, cnt) for i, kind, name, rt, cnt in _core.loaded_programs()}


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args))
        return 0
    from rbcc import _core

    stats = _core.enable_stats()
    try:
        names = Names()
        cpus = os.cpu_count() or 1
        before, at = snapshot(names), time.monotonic()
        print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
        for _ in block.top_screens(args):
            after, now = snapshot(names), time.monotonic()
            table = sorted(rows(before, after, now - at, cpus), key=SORTS[args.sort], reverse=True)
            before, at = after, now
            names.known = {i: n for i, n in names.known.items() if i in after}  # ids of unloaded programs go
            print(
                "%-7s %-16s %-40s %22s %10s %7s" % ("ID", "TYPE", "NAME", "PERIOD-AVG-RUNTIME(ns)", "EVENTS/s", "CPU%")
            )
            for r in table[: args.maxrows]:
                print(
                    "%-7d %-16s %-40s %22d %10d %7.2f"
                    % (r.id, r.type, r.name, round(r.avg_ns), round(r.events_per_s), r.cpu_percent)
                )
    finally:
        os.close(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
