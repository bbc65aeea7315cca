#!/usr/bin/env python3
"""virtiostat: virtio devices' queued buffers and bytes, per device and virtqueue, per interval.

Kprobes on the virtio ring's virtqueue_add_sgs, virtqueue_add_outbuf, virtqueue_add_inbuf and
virtqueue_add_inbuf_ctx, as bcc: no tracepoint sees the buffers a driver hands a virtqueue. A kernel
without kprobes cannot run it: it says so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc._tools import block, common

__all__ = ["PROBES", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool virtiostat                 # print 3(default) second summaries
    rbcc tool virtiostat  1  10          # print 1 second summaries, 10 times
    rbcc tool virtiostat -T              # show timestamps
    rbcc tool virtiostat -d virtio_blk   # only show virtio block devices
    rbcc tool virtiostat -n virtio0      # only show virtio0 device
    rbcc tool virtiostat -D              # show debug bpf text
"""

# kernel function -> probe
PROBES = {
    "virtqueue_add_sgs": "trace_virtqueue_add_sgs",
    "virtqueue_add_outbuf": "trace_virtqueue_add_outbuf",
    "virtqueue_add_inbuf": "trace_virtqueue_add_inbuf",
    "virtqueue_add_inbuf_ctx": "trace_virtqueue_add_inbuf_ctx",
}

BPF_TEXT = r"""
#include <linux/virtio.h>
#include <linux/scatterlist.h>

#define VIRTIO_MAX_SGS 6   // virtio-scsi hands at most 6 lists
#define SG_MAX 128         // virtio-blk at most 128 segments
#define SG_CHAIN_BIT 0x01UL
#define SG_END_BIT 0x02UL

struct virtio_stat_t {
    char driver[16];
    char dev[12];
    char vqname[12];
    u32 in_sgs;
    u32 out_sgs;
    u64 in_bw;
    u64 out_bw;
};

BPF_HASH(stats, u64, struct virtio_stat_t);

// the entry after sg in its list (following a chain link), NULL after the last
static __always_inline struct scatterlist *next_sg(struct scatterlist *sg) {
    unsigned long link = 0;
    bpf_probe_read_kernel(&link, sizeof(link), &sg->page_link);
    if (link & SG_END_BIT)
        return NULL;
    sg++;
    bpf_probe_read_kernel(&link, sizeof(link), &sg->page_link);
    if (link & SG_CHAIN_BIT)
        sg = (struct scatterlist *)(link & ~(SG_CHAIN_BIT | SG_END_BIT));
    return sg;
}

// the bytes of one scatterlist
static __always_inline u64 list_len(struct scatterlist *sg) {
    u64 total = 0;
    for (int n = 0; sg && n < SG_MAX; n++) {
        unsigned int len = 0;
        bpf_probe_read_kernel(&len, sizeof(len), &sg->length);
        total += len;
        sg = next_sg(sg);
    }
    return total;
}

// the bytes of the lists sgs[0..num)
static __always_inline u64 lists_len(struct scatterlist **sgs, unsigned int num) {
    u64 total = 0;
    for (unsigned int i = 0; i < VIRTIO_MAX_SGS && i < num; i++) {
        struct scatterlist *sg = NULL;
        bpf_probe_read_kernel(&sg, sizeof(sg), &sgs[i]);
        total += list_len(sg);
        // keep clang from widening i into a bound the verifier cannot follow
        asm volatile("" : "=r"(i) : "0"(i));
    }
    return total;
}

static __always_inline int names_match(const char *a, const char *b) {
    for (int i = 0; i < 16; i++) {
        if (a[i] != b[i])
            return 0;
        if (!a[i])
            return 1;
    }
    return 1;
}

static __always_inline void record(struct virtqueue *vq, u32 out_sgs, u32 in_sgs, u64 out_bw, u64 in_bw) {
    struct virtio_stat_t fresh = {};
    struct virtio_device *vdev = vq->vdev;
    bpf_probe_read_kernel_str(fresh.driver, sizeof(fresh.driver), vdev->dev.driver->name);
    bpf_probe_read_kernel_str(fresh.dev, sizeof(fresh.dev), vdev->dev.kobj.name);
    DRIVER_FILTER
    DEVNAME_FILTER
    u64 key = (u64)vq;
    struct virtio_stat_t *vs = stats.lookup(&key);
    if (!vs) {
        bpf_probe_read_kernel_str(fresh.vqname, sizeof(fresh.vqname), vq->name);
        fresh.out_sgs = out_sgs;
        fresh.in_sgs = in_sgs;
        fresh.out_bw = out_bw;
        fresh.in_bw = in_bw;
        stats.update(&key, &fresh);
        return;
    }
    // the byte counts atomically (the 32-bit counts as bcc: plain adds, as BPF has no 32-bit atomic
    // add on every CPU version clang targets)
    vs->out_sgs += out_sgs;
    vs->in_sgs += in_sgs;
    __sync_fetch_and_add(&vs->out_bw, out_bw);
    __sync_fetch_and_add(&vs->in_bw, in_bw);
}

int trace_virtqueue_add_sgs(struct pt_regs *ctx, struct virtqueue *vq, struct scatterlist **sgs,
                            unsigned int out_sgs, unsigned int in_sgs) {
    u64 out_bw = out_sgs ? lists_len(sgs, out_sgs) : 0;
    u64 in_bw = in_sgs ? lists_len(sgs + out_sgs, in_sgs) : 0;
    record(vq, out_sgs, in_sgs, out_bw, in_bw);
    return 0;
}

int trace_virtqueue_add_outbuf(struct pt_regs *ctx, struct virtqueue *vq, struct scatterlist *sg) {
    record(vq, 1, 0, list_len(sg), 0);
    return 0;
}

int trace_virtqueue_add_inbuf(struct pt_regs *ctx, struct virtqueue *vq, struct scatterlist *sg) {
    record(vq, 0, 1, 0, list_len(sg));
    return 0;
}

int trace_virtqueue_add_inbuf_ctx(struct pt_regs *ctx, struct virtqueue *vq, struct scatterlist *sg) {
    record(vq, 0, 1, 0, list_len(sg));
    return 0;
}
"""


def name_filter(field: str, value: str | None) -> str:
    """C that leaves record() unless ``fresh.<field>`` is ``value`` (names are 15 characters at most)."""
    if value is None:
        return ""
    wanted = value.encode()[:15].decode(errors="ignore").replace("\\", "\\\\").replace('"', '\\"')
    return f'{{ char wanted[16] = "{wanted}"; if (!names_match(wanted, fresh.{field})) return; }}'


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("virtiostat", "Show virtio devices input/output statistics", EXAMPLES)
    p.add_argument("interval", nargs="?", type=common.positive_int, default=3, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")
    p.add_argument("-T", "--timestamp", action="store_true", help="show timestamp on output")
    p.add_argument("-d", "--driver", help="filter for driver name")
    p.add_argument("-n", "--devname", help="filter for device name")
    p.add_argument(
        "-D", "--debug", action="store_true", help="print BPF program before starting (for debugging purposes)"
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return BPF_TEXT.replace("DRIVER_FILTER", name_filter("driver", args.driver)).replace(
        "DEVNAME_FILTER", name_filter("dev", args.devname)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("virtiostat", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(
        args,
        bpf_text(args),
        print_text=args.debug,
        check=lambda: block.need_kprobes(
            "virtiostat",
            ", ".join(PROBES),
            "no tracepoint sees the buffers drivers add to virtqueues",
            "no tracepoint alternative: run it on a kernel with kprobes",
        ),
    )
    if b is None:
        return 0
    with b:
        for fn, probe in PROBES.items():
            b.attach_kprobe(event=fn, fn_name=probe)
        print("Tracing virtio devices statistics ... Hit Ctrl-C to end.", flush=True)
        stats = b["stats"]
        for last in common.intervals(args.interval, args.count):
            print(time.strftime("%H:%M:%S") if args.timestamp else "--------")
            print(
                "%14s %8s %10s %7s %7s %14s %14s"
                % ("Driver", "Device", "VQ Name", "In SGs", "Out SGs", "In BW", "Out BW")
            )
            for _, v in sorted(stats.items(), key=lambda kv: bytes(kv[1].dev)):
                print(
                    "%14s %8s %10s %7d %7d %14d %14d"
                    % (
                        v.driver.decode("utf-8", "replace"),
                        v.dev.decode("utf-8", "replace"),
                        v.vqname.decode("utf-8", "replace"),
                        v.in_sgs,
                        v.out_sgs,
                        v.in_bw,
                        v.out_bw,
                    )
                )
            sys.stdout.flush()
            stats.clear()
            if last:
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
