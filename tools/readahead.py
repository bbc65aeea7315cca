#!/usr/bin/env python3
"""readahead: monitor the read-ahead cache: pages read ahead and never used, and the age of those used.

bcc marks the pages a readahead allocates (kprobes on do_page_cache_ra() and __page_cache_alloc())
and times them until mark_page_accessed(). The same moments from tracepoints here: a task enters a
readahead of a file at readahead:page_cache_ra_unbounded or page_cache_ra_order; the folios it then
adds to that file's page cache (filemap:mm_filemap_add_to_page_cache) are read ahead, born now; a
folio is used when a read() gathers it (filemap:mm_filemap_get_pages, which also ends the task's
readahead) or a page fault maps it (mm_filemap_fault, mm_filemap_map_pages). Counts are in pages (a
large folio counts all its pages); a read() reaching past 256 pages has its first 256 looked at.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, sched
from rbcc.errors import KernelFeatureError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool readahead -d 20       # monitor for 20 seconds and generate stats
"""

MAX_PAGES = 256  # pages of one read() looked at

BPF_TEXT = r"""
// no padding in the keys: every byte of a key is set, so equal pages make equal keys
struct file_t {
    u64 ino;
    u64 dev;
};

struct page_t {
    u64 ino;
    u64 index;
    u64 dev;
};

struct born_t {
    u64 ts;
    u64 pages;
};

BPF_HASH(reading_ahead, u32, struct file_t, 10240);  // by thread: the file it reads ahead
BPF_HASH(birth, struct page_t, struct born_t, 65536);  // folios read ahead, by first page
BPF_ARRAY(pages, s64, 1);                               // read ahead, not yet used
BPF_HISTOGRAM(dist);

static __always_inline int start_readahead(u64 ino, u64 dev)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct file_t f = {.ino = ino, .dev = dev};
    reading_ahead.update(&tid, &f);
    return 0;
}

TRACEPOINT_PROBE(readahead, page_cache_ra_unbounded) { return start_readahead(args->i_ino, args->s_dev); }
TRACEPOINT_PROBE(readahead, page_cache_ra_order) { return start_readahead(args->i_ino, args->s_dev); }

TRACEPOINT_PROBE(filemap, mm_filemap_add_to_page_cache) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct file_t *f = reading_ahead.lookup(&tid);
    if (f == 0 || f->ino != args->i_ino || f->dev != args->s_dev)
        return 0;
    struct page_t key = {.ino = args->i_ino, .index = args->index, .dev = args->s_dev};
    struct born_t born = {.ts = bpf_ktime_get_ns(), .pages = 1ULL << (args->order & 31)};
    birth.update(&key, &born);
    int zero = 0;
    pages.atomic_increment(zero, born.pages);
    return 0;
}

// the folio starting at key's page is used now, if it was read ahead
static __always_inline void use(struct page_t *key)
{
    struct born_t *born = birth.lookup(key);
    if (born == 0)
        return;
    u64 ms = (bpf_ktime_get_ns() - born->ts) / 1000000;
    dist.atomic_increment(bpf_log2l(ms), born->pages);
    int zero = 0;
    pages.atomic_increment(zero, -(s64)born->pages);
    birth.delete(key);
}

static __always_inline int used(u64 ino, u64 dev, u64 first, u64 last)
{
    struct page_t key = {.ino = ino, .dev = dev};
    // the folio holding the first page may start before it (folios are aligned to their size)
    for (int order = 1; order <= 9; order++) {
        key.index = first & ~((1ULL << order) - 1);
        if (key.index != first)
            use(&key);
    }
    for (int i = 0; i < MAX_PAGES; i++) {
        if (first + i > last)
            break;
        key.index = first + i;
        use(&key);
    }
    return 0;
}

TRACEPOINT_PROBE(filemap, mm_filemap_get_pages) {
    used(args->i_ino, args->s_dev, args->index, args->last_index);
    u32 tid = (u32)bpf_get_current_pid_tgid();
    reading_ahead.delete(&tid);  // the read's readahead, if any, is done
    return 0;
}

TRACEPOINT_PROBE(filemap, mm_filemap_map_pages) {
    return used(args->i_ino, args->s_dev, args->index, args->last_index);
}

TRACEPOINT_PROBE(filemap, mm_filemap_fault) {
    return used(args->i_ino, args->s_dev, args->index, args->index);
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("readahead", "Monitor performance of read ahead cache", EXAMPLES)
    p.add_argument("-d", "--duration", type=common.positive_int, help="total duration to monitor for, in seconds")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); -d changes only how long it runs."""
    return BPF_TEXT.replace("MAX_PAGES", str(MAX_PAGES))


TRACEPOINTS = (
    ("readahead", "page_cache_ra_unbounded"),
    ("readahead", "page_cache_ra_order"),
    ("filemap", "mm_filemap_add_to_page_cache"),
    ("filemap", "mm_filemap_get_pages"),
    ("filemap", "mm_filemap_map_pages"),
    ("filemap", "mm_filemap_fault"),
)


def need_tracepoints() -> None:
    """KernelFeatureError (one line) naming the tracepoints this kernel lacks (the readahead ones and
    mm_filemap_get_pages/map_pages/fault are recent: older kernels lack them)."""
    missing = [f"{c}:{e}" for c, e in TRACEPOINTS if not BPF.tracepoint_exists(c, e)]
    if missing:
        raise KernelFeatureError(
            "needs the tracepoints %s, which this kernel lacks; bcc's readahead uses kprobes instead"
            % ", ".join(missing),
            feature="readahead tracepoints",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("readahead", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), check=need_tracepoints)
    if b is None:
        return 0
    with b:
        print("Tracing... Hit Ctrl-C to end.", flush=True)
        try:
            time.sleep(args.duration or sched.FOREVER)
        except KeyboardInterrupt:
            pass
        print()
        print("Read-ahead unused pages: %d" % b["pages"][0].value)
        print("Histogram of read-ahead used page age (ms):")
        print("")
        b["dist"].print_log2_hist("age (ms)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
