#!/usr/bin/env python3
"""biolatpcts: percentiles of the I/O latency of one block device, by operation, per interval.

As bcc, at block:block_rq_complete (its raw form, handed the request) each read, write, discard and
flush request of the device is timed from the moment -w names, which the block layer stamps on the
request itself: its allocation (alloc_time_ns, stamped only where a policy such as iocost asks for
it), its creation (start_time_ns) or its issue to the driver (io_start_time_ns, the default). The
latencies land in three linear histograms (100 ms, 1 ms and 10 us slots, the finer ones for the
requests that fit), from which the percentiles are read.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "format_usec", "main", "percentiles"]

EXAMPLES = """examples:
    rbcc tool biolatpcts vda                 # read/write/discard/flush latency percentiles every 3 s
    rbcc tool biolatpcts -i 1 -j 8:0         # every second, as JSON (seconds), by major:minor
    rbcc tool biolatpcts -w after-rq-alloc -p 50,99,99.9 /dev/nvme0n1
    rbcc tool biolatpcts -i -1 vda           # report on SIGUSR1 (new period) / SIGUSR2, and at exit

With -i -1 the tool prints once it is ready, then on SIGUSR1 (and starts a new period) or SIGUSR2
(without), and before it exits on SIGINT, SIGTERM or SIGHUP.
"""

OPS = ("read", "write", "discard", "flush")
# REQ_OP_* (the low bits of cmd_flags) of each row above
REQ_OPS = {0: 0, 1: 1, 3: 2, 2: 3}
SLOTS = 100  # per operation, in each of the three histograms
START_FIELDS = {"from-rq-alloc": "alloc_time_ns", "after-rq-alloc": "start_time_ns", "on-device": "io_start_time_ns"}
USEC, MSEC, SEC = 1, 1000, 1000000

BPF_TEXT = r"""
#include <linux/blk-mq.h>

// per operation (row * 100 + slot): 100 ms slots for every request, 1 ms slots for those under
// 100 ms, 10 us slots for those under 1 ms; the last slot of each holds everything above it
BPF_PERCPU_ARRAY(lat_100ms, u64, NSLOTS);
BPF_PERCPU_ARRAY(lat_1ms, u64, NSLOTS);
BPF_PERCPU_ARRAY(lat_10us, u64, NSLOTS);

static __always_inline u32 slot_of(u64 ns, u64 width) {
    u64 slot = ns / width;
    return slot > 99 ? 99 : slot;
}

RAW_TRACEPOINT_PROBE(block_rq_complete) {
    struct request *rq = (struct request *)ctx->args[0];
    u64 since = rq->START_FIELD;
    if (!since)
        return 0;   // not stamped (alloc_time_ns without a policy that asks for it)
    struct gendisk *disk = rq->q->disk;
    if (!disk || disk->major != MAJOR || disk->first_minor != MINOR)
        return 0;
    u32 row;
    switch (rq->cmd_flags & 0xff) {
    OP_CASES
    default:
        return 0;
    }
    u64 ns = bpf_ktime_get_ns() - since;
    u32 slot = slot_of(ns, 100000000);
    u32 at = row * 100 + slot;
    lat_100ms.increment(at);
    if (slot)
        return 0;
    slot = slot_of(ns, 1000000);
    at = row * 100 + slot;
    lat_1ms.increment(at);
    if (slot)
        return 0;
    at = row * 100 + slot_of(ns, 10000);
    lat_10us.increment(at);
    return 0;
}
"""


def device_arg(text: str) -> tuple[str, int, int]:
    """DEV as bcc takes it: /dev/DEVNAME, DEVNAME or MAJ:MIN → (name to print, major, minor)."""
    parts = text.split(":")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return text, int(parts[0]), int(parts[1])
    path = text if "/" in text else os.path.join("/dev", text)
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        raise argparse.ArgumentTypeError(f"no such block device {text!r}") from None
    return os.path.basename(text), os.major(rdev), os.minor(rdev)


def pcts_arg(text: str) -> list[str]:
    pcts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if not pcts or not all(0 <= float(p) <= 100 for p in pcts):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"percentiles between 0 and 100, separated by commas: {text!r}") from None
    return sorted(pcts, key=float)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("biolatpcts", "Monitor IO latency distribution of a block device", EXAMPLES)
    p.add_argument("dev", metavar="DEV", type=device_arg, help="target block device (/dev/DEVNAME, DEVNAME or MAJ:MIN)")
    p.add_argument(
        "-i", "--interval", type=int, default=3, help="report interval (0: exit after startup, -1: infinite), default 3"
    )
    p.add_argument(
        "-w", "--which", choices=list(START_FIELDS), default="on-device", help="which latency to measure (on-device)"
    )
    p.add_argument(
        "-p",
        "--pcts",
        metavar="PCT,...",
        type=pcts_arg,
        default=pcts_arg("1,5,10,16,25,50,75,84,90,95,99,100"),
        help="percentiles to calculate (1,5,10,16,25,50,75,84,90,95,99,100)",
    )
    p.add_argument("-j", "--json", action="store_true", help="output in json")
    p.add_argument("--verbose", "-v", action="count", default=0, help="print the histograms too")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    _, major, minor = args.dev
    cases = "\n    ".join(f"case {op}: row = {row}; break;" for op, row in REQ_OPS.items())
    return (
        BPF_TEXT.replace("NSLOTS", str(SLOTS * len(OPS)))
        .replace("START_FIELD", START_FIELDS[args.which])
        .replace("MAJOR", str(major))
        .replace("MINOR", str(minor))
        .replace("OP_CASES", cases)
    )


def percentiles(
    pcts: Sequence[str], hist_100ms: Sequence[int], hist_1ms: Sequence[int], hist_10us: Sequence[int]
) -> list[float]:
    """Each percentile of one operation's latency, in microseconds (the middle of the slot it falls
    in; 0 without requests). The finest histogram that holds a request says where it lies: the 10 us
    slots below 1 ms, then the 1 ms slots below 100 ms, then the 100 ms slots."""
    buckets: list[tuple[float, int]] = [(10 * i + 5, n) for i, n in enumerate(hist_10us)]
    buckets += [(MSEC * i + MSEC / 2, n) for i, n in enumerate(hist_1ms) if i > 0]
    buckets += [(100 * MSEC * i + 50 * MSEC, n) for i, n in enumerate(hist_100ms) if i > 0]
    total = sum(hist_100ms)
    out = []
    for pct in pcts:
        if total == 0:
            out.append(0.0)
            continue
        need, seen = float(pct) / 100 * total, 0
        value = buckets[-1][0]
        for usec, n in buckets:
            seen += n
            if n and seen >= need:
                value = usec
                break
        out.append(float(value))
    return out


def format_usec(usec: float) -> str:
    """A latency as bcc's biolatpcts prints it."""
    if usec > SEC:
        return "%.1fs" % (usec / SEC)
    if usec > 10 * MSEC:
        return "%.0fms" % (usec / MSEC)
    if usec > MSEC:
        return "%.1fms" % (usec / MSEC)
    if usec > 0:
        return "%.0fus" % usec
    return "-"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("biolatpcts", lambda: run(args))


def _report(args: argparse.Namespace, hists: list[list[int]]) -> None:
    table = {}
    for row, op in enumerate(OPS):
        parts = [h[row * SLOTS : (row + 1) * SLOTS] for h in hists]
        table[op] = percentiles(args.pcts, *parts)
        if args.verbose:
            for label, part in zip(("100ms", "  1ms", " 10us"), parts):
                print("%-7s %s %s" % (op, label, part))
    if args.json:
        print(json.dumps({op: {p: v / SEC for p, v in zip(args.pcts, lat)} for op, lat in table.items()}), flush=True)
        return
    widths = [max(len(p), 5) for p in args.pcts]
    print("\n%-7s" % args.dev[0] + "".join(" %5s" % p for p in args.pcts))
    for op, lat in table.items():
        print("%-7s" % op + "".join(" %*s" % (w, format_usec(v)) for w, v in zip(widths, lat)))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None or args.interval == 0:
        if b is not None:
            b.cleanup()
        return 0
    maps = [b["lat_100ms"], b["lat_1ms"], b["lat_10us"]]
    last = [[0] * (SLOTS * len(OPS)) for _ in maps]
    wake = threading.Event()
    state = {"running": True, "new_period": False}

    def on_signal(sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGUSR1:
            state["new_period"] = True
        elif sig != signal.SIGUSR2:
            state["running"] = False
        wake.set()

    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if args.interval < 0:
        wake.set()  # the first report says it is ready
    with b:
        while state["running"]:
            wake.wait(args.interval if args.interval > 0 else None)
            wake.clear()
            advance = args.interval > 0 or state["new_period"]
            state["new_period"] = False
            hists = []
            for m, prev in zip(maps, last):
                now = [m.sum(i).value for i in range(SLOTS * len(OPS))]
                hists.append([max(v - p, 0) for v, p in zip(now, prev)])
                if advance:
                    prev[:] = now
            _report(args, hists)
    return 0


if __name__ == "__main__":
    sys.exit(main())
