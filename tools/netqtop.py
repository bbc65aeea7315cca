#!/usr/bin/env python3
"""netqtop: summarize one network interface's packets per queue: average size, counts by size, rates.

Per queue, sent and received: the average packet size, the packets by size, and with -t the bytes
and packets per second.

The net:net_dev_start_xmit (transmit) and net:netif_receive_skb (receive) tracepoints, as bcc uses,
matched on the device name those tracepoints carry; the receive queue is the one the driver recorded
in the packet (queue 0 where it records none).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc._tools import common
from rbcc.errors import BPFError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool netqtop -n eth0           # per-queue packet sizes of eth0, every second
    rbcc tool netqtop -n eth0 -i 5 -t   # every 5 seconds, with bytes and packets per second
"""

IFNAMSIZ = 16
MAX_QUEUE_NUM = 1024

BPF_TEXT = r"""
#include <linux/netdevice.h>

union name_buf {
    char name[IFNAMSIZ];
    struct {
        u64 hi;
        u64 lo;
    } name_int;
};

struct queue_data {
    u64 total_pkt_len;
    u32 num_pkt;
    u32 size_64B;
    u32 size_512B;
    u32 size_2K;
    u32 size_16K;
    u32 size_64K;
};

BPF_ARRAY(name_map, union name_buf, 1);
BPF_HASH(tx_q, u16, struct queue_data, MAX_QUEUE_NUM);
BPF_HASH(rx_q, u16, struct queue_data, MAX_QUEUE_NUM);

static __always_inline int is_our_device(union name_buf *seen) {
    int zero = 0;
    union name_buf *want = name_map.lookup(&zero);
    return want && want->name_int.hi == seen->name_int.hi && want->name_int.lo == seen->name_int.lo;
}

static __always_inline void count(struct queue_data *d, u64 len) {
    __sync_fetch_and_add(&d->total_pkt_len, len);
    __sync_fetch_and_add(&d->num_pkt, 1);
    if (len < 64)
        __sync_fetch_and_add(&d->size_64B, 1);
    else if (len < 512)
        __sync_fetch_and_add(&d->size_512B, 1);
    else if (len < 2048)
        __sync_fetch_and_add(&d->size_2K, 1);
    else if (len < 16384)
        __sync_fetch_and_add(&d->size_16K, 1);
    else if (len < 65536)
        __sync_fetch_and_add(&d->size_64K, 1);
}

TRACEPOINT_PROBE(net, net_dev_start_xmit) {
    union name_buf dev = {};
    TP_DATA_LOC_READ_STR(dev.name, name, IFNAMSIZ);
    if (!is_our_device(&dev))
        return 0;
    u16 qid = args->queue_mapping;
    struct queue_data zero = {};
    struct queue_data *d = tx_q.lookup_or_try_init(&qid, &zero);
    if (d)
        count(d, args->len);
    return 0;
}

TRACEPOINT_PROBE(net, netif_receive_skb) {
    union name_buf dev = {};
    TP_DATA_LOC_READ_STR(dev.name, name, IFNAMSIZ);
    if (!is_our_device(&dev))
        return 0;
    struct sk_buff *skb = (struct sk_buff *)args->skbaddr;
    u16 qid = skb_rx_queue_recorded(skb) ? skb_get_rx_queue(skb) : 0;
    struct queue_data zero = {};
    struct queue_data *d = rx_q.lookup_or_try_init(&qid, &zero);
    if (d)
        count(d, args->len);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("netqtop", "Summarize a network interface's packets per queue", EXAMPLES)
    p.add_argument("--name", "-n", type=str, default="", help="the network interface")
    p.add_argument("--interval", "-i", type=float, default=1, help="output interval, in seconds (default 1)")
    p.add_argument("--throughput", "-t", action="store_true", help="show bytes and packets per second")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (the same for every option: the device's name goes into a map)."""
    return BPF_TEXT.replace("MAX_QUEUE_NUM", str(MAX_QUEUE_NUM)).replace("IFNAMSIZ", str(IFNAMSIZ))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("netqtop", lambda: run(args))


def to_str(num: float) -> str:
    """bcc's short numbers: K and M past a thousand and a million (in powers of 1024)."""
    if num > 1000000:
        return str(round(num / (1024 * 1024.0), 2)) + "M"
    if num > 1000:
        return str(round(num / 1024.0, 2)) + "K"
    return str(round(num, 2)) if isinstance(num, float) else str(num)


def print_table(entries: dict[int, Any], queues: int, interval: float, throughput: bool) -> None:
    headers = ["QueueID", "avg_size", "[0, 64)", "[64, 512)", "[512, 2K)", "[2K, 16K)", "[16K, 64K)"]
    if throughput:
        headers += ["BPS", "PPS"]
    print(" " + "".join("%-11s" % h for h in headers))
    total_len = total_pkt = 0
    groups = [0] * 5
    for qid in range(queues):
        v = entries.get(qid)
        sizes = [v.size_64B, v.size_512B, v.size_2K, v.size_16K, v.size_64K] if v else [0] * 5
        length, packets = (v.total_pkt_len, v.num_pkt) if v else (0, 0)
        total_len += length
        total_pkt += packets
        groups = [g + s for g, s in zip(groups, sizes, strict=True)]
        avg = length / packets if packets else 0
        line = " %-11d%-11s" % (qid, to_str(avg)) + "".join("%-11s" % to_str(s) for s in sizes)
        if throughput:
            line += "%-11s%-11s" % (to_str(length / interval), to_str(packets / interval))
        print(line)
    avg = total_len / total_pkt if total_pkt else 0
    line = " Total      %-11s" % to_str(avg) + "".join("%-11s" % to_str(g) for g in groups)
    if throughput:
        line += "%-11s%-11s" % (to_str(total_len / interval), to_str(total_pkt / interval))
    print(line)


def queue_counts(name: str) -> tuple[int, int]:
    """(tx, rx) queues of the interface, from sysfs."""
    path = f"/sys/class/net/{name}/queues"
    if not os.path.exists(path):
        raise BPFError(f"Net interface {name} does not exist.")
    entries = os.listdir(path)
    return sum(e.startswith("tx") for e in entries), sum(e.startswith("rx") for e in entries)


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args))
        return 0
    if not args.name:
        print("Please specify a network interface.", file=sys.stderr)
        return 1
    if len(args.name) > IFNAMSIZ - 1:
        print("NIC name too long", file=sys.stderr)
        return 1
    if args.interval <= 0:
        print("print interval must be positive", file=sys.stderr)
        return 1
    tx_num, rx_num = queue_counts(args.name)
    if tx_num > MAX_QUEUE_NUM or rx_num > MAX_QUEUE_NUM:
        print("number of queues over 1024 is not supported.", file=sys.stderr)
        return 1
    b = common.load(args, bpf_text(args))
    assert b is not None
    with b:
        names = b["name_map"]
        want = names.Leaf()
        ctypes.memmove(ctypes.byref(want), args.name.encode().ljust(IFNAMSIZ, b"\0"), IFNAMSIZ)
        names[ctypes.c_int(0)] = want
        print("Tracing %s... Hit Ctrl-C to end" % args.name, flush=True)
        for _last in common.intervals(args.interval, None):
            print(time.asctime(time.localtime()))
            for title, table, queues in (("TX", b["tx_q"], tx_num), ("RX", b["rx_q"], rx_num)):
                if title == "RX":
                    print()
                print(title)
                entries = {k.value: v for k, v in table.items()}
                table.clear()
                print_table(entries, queues, args.interval, args.throughput)
            print("-" * (95 if args.throughput else 77))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
