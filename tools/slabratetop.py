#!/usr/bin/env python3
"""slabratetop: kernel SLAB/SLUB memory cache allocation rate top: allocations and bytes per cache.

Counts at the kmem_cache_alloc raw tracepoint, which on recent kernels (not yet Debian's 6.1) hands
over the cache itself (``struct kmem_cache *s``): its name and object size are read from it, as bcc
reads them in its kprobe on kmem_cache_alloc(); older kernels get one line saying so, status 1.
The tracepoint fires for allocations from named caches; kmalloc() allocations (the kmalloc-* caches)
have their own tracepoint and are not counted, which bcc's kprobe missed too on kernels where
kmalloc does not go through kmem_cache_alloc(). Caches merged by SLUB count under the name of the
cache they were merged into (the name /proc/slabinfo shows).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import block, common
from rbcc.errors import KernelFeatureError
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool slabratetop            # kmem_cache_alloc() top, 1 second refresh
    rbcc tool slabratetop -C         # don't clear the screen
    rbcc tool slabratetop 5          # 5 second summaries
    rbcc tool slabratetop 5 10       # 5 second summaries, 10 times only
"""

BPF_TEXT = r"""
#define CACHE_NAME_SIZE 32

struct info_t {
    char name[CACHE_NAME_SIZE];
};

struct val_t {
    u64 count;
    u64 size;
};

BPF_HASH(counts, struct info_t, struct val_t);

// kmem_cache_alloc(unsigned long call_site, const void *ptr, struct kmem_cache *s, gfp_t, int node)
RAW_TRACEPOINT_PROBE(kmem_cache_alloc) {
    struct kmem_cache *s = (struct kmem_cache *)ctx->args[2];
    struct info_t info = {};
    bpf_probe_read_kernel_str(&info.name, sizeof(info.name), s->name);
    struct val_t zero = {}, *val = counts.lookup_or_try_init(&info, &zero);
    if (val) {
        __sync_fetch_and_add(&val->count, 1);
        __sync_fetch_and_add(&val->size, s->size);
    }
    return 0;
}
"""

FORMAT = "/sys/kernel/tracing/events/kmem/kmem_cache_alloc/format"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("slabratetop", "Kernel SLAB/SLUB memory cache allocation rate top", EXAMPLES)
    block.add_top_options(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); the options change only the output."""
    return BPF_TEXT


def need_cache_argument() -> None:
    """KernelFeatureError unless the kmem_cache_alloc tracepoint passes the cache (its format then has
    the cache's name)."""
    text = ""
    if BPF.tracepoint_exists("kmem", "kmem_cache_alloc"):
        try:
            with open(FORMAT) as f:
                text = f.read()
        except OSError:
            pass
    if "char[] name;" not in text:
        raise KernelFeatureError(
            "needs a kmem_cache_alloc tracepoint that passes the cache it allocates from (recent "
            "kernels), and this kernel's does not; bcc's slabratetop uses a kprobe instead",
            feature="kmem_cache_alloc tracepoint with the cache",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("slabratetop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), check=need_cache_argument)
    if b is None:
        return 0
    with b:
        print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
        counts = b["counts"]
        for _ in block.top_screens(args):
            print("%-32s %6s %10s" % ("CACHE", "ALLOCS", "BYTES"))
            rows = sorted(counts.items(), key=lambda kv: kv[1].size, reverse=True)
            for k, v in rows[: args.maxrows]:
                printb(b"%-32s %6d %10d" % (k.name, v.count, v.size))
            counts.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
