#!/usr/bin/env python3
"""cachetop: page cache hits, misses and dirties per process, top-style.

It counts, per process, calls of the page cache's functions with kprobes, as bcc's cachetop and
cachestat do: folio_mark_accessed (accesses), mark_buffer_dirty (buffer dirties), filemap_add_folio
(pages added: misses) and folio_account_dirtied (pages dirtied), or the older kernels' names of the
same functions. Page accesses have no tracepoint, so a kernel without kprobes cannot run it: it says
so in one line and exits with status 1.

bcc's cachetop draws with curses and sorts by keys pressed; this one prints a screen per interval,
as biotop and filetop do, sorted by ``-s`` (``-R`` for ascending).
"""

from __future__ import annotations

import argparse
import pwd
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

from rbcc._tools import block, common, pagecache, proc

__all__ = ["FIELDS", "Row", "bpf_text", "build_parser", "main", "row_of"]

EXAMPLES = """examples:
    rbcc tool cachetop             # page cache use per process, every 5 seconds
    rbcc tool cachetop 1           # every second
    rbcc tool cachetop -p 181      # process 181 only
    rbcc tool cachetop -s MISSES   # busiest missers first
"""

FIELDS = ("PID", "UID", "CMD", "HITS", "MISSES", "DIRTIES", "READ_HIT%", "WRITE_HIT%")

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>

struct key_t {
    u32 pid;
    u32 uid;
    u32 what;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(counts, struct key_t, u64);

static __always_inline int count(u32 what) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (PID_FILTER)
        return 0;
    struct key_t key = {.pid = pid, .uid = (u32)bpf_get_current_uid_gid(), .what = what};
    bpf_get_current_comm(&key.comm, sizeof(key.comm));
    counts.atomic_increment(key);
    return 0;
}

int do_accessed(struct pt_regs *ctx) { return count(ACCESSED); }
int do_buffer_dirty(struct pt_regs *ctx) { return count(BUFFER_DIRTY); }
int do_added(struct pt_regs *ctx) { return count(ADDED); }
int do_dirtied(struct pt_regs *ctx) { return count(DIRTIED); }
"""


class Row(NamedTuple):
    pid: int
    uid: int
    comm: str
    hits: int
    misses: int
    dirties: int
    read_hit: float
    write_hit: float


def row_of(pid: int, uid: int, comm: str, counted: Sequence[int]) -> Row:
    """One process's row from its four counts (indexed as pagecache.FUNCTIONS), with bcc's cachetop arithmetic:
    HITS are all accesses (reads' and buffer dirties'), MISSES the pages added plus those dirtied, and
    the read and write hit percentages the shares of page accesses and of pages added in the two
    together."""
    accessed, added, dirtied, buffer_dirty = counted
    hits = accessed + buffer_dirty
    misses = added + dirtied
    seen = hits + misses
    read_hit = 100.0 * accessed / seen if seen else 0.0
    write_hit = 100.0 * added / seen if seen else 0.0
    return Row(pid, uid, comm, hits, misses, buffer_dirty, read_hit, write_hit)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "cachetop",
        "Show Linux page cache hit/miss statistics including read and write hit % per process, top-style",
        EXAMPLES,
    )
    p.add_argument("-p", "--pid", type=int, metavar="PID", help="trace this PID only")
    p.add_argument("-s", "--sort", choices=FIELDS, default="HITS", help="sort column, default HITS")
    p.add_argument("-R", "--reverse", action="store_true", help="sort ascending (default: descending)")
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=common.positive_int, default=20, help="maximum rows to print, default 20")
    p.add_argument("interval", nargs="?", type=common.positive_int, default=5, help="interval between screens, seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of screens")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = BPF_TEXT.replace("PID_FILTER", common.pid_condition("pid", args.pid))
    for name in ("ACCESSED", "ADDED", "DIRTIED", "BUFFER_DIRTY"):
        text = text.replace(f"count({name})", f"count({getattr(pagecache, name)})")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("cachetop", lambda: run(args))


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"UNKNOWN({uid})"


def rows(items: Sequence[tuple[tuple[int, int, int, str], int]], sort: str, ascending: bool) -> list[Row]:
    """The screen's rows from the map's ((pid, uid, what, comm), count) pairs, sorted."""
    per_process: dict[tuple[int, int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for (pid, uid, what, comm), n in items:
        per_process[(pid, uid, comm)][what] += n
    out = [row_of(pid, uid, comm, counted) for (pid, uid, comm), counted in per_process.items()]
    return sorted(out, key=lambda r: r[FIELDS.index(sort)], reverse=not ascending)


def run(args: argparse.Namespace) -> int:
    alternative = "`rbcc tool filetop` shows reads and writes per process and file at the syscalls"
    b = pagecache.load(args, "cachetop", bpf_text(args), alternative)
    if b is None:
        return 0
    with b:
        counts = b["counts"]
        for last in common.intervals(args.interval, args.count):
            items = [((k.pid, k.uid, k.what, k.comm.decode("utf-8", "replace")), v.value) for k, v in counts.items()]
            counts.clear()
            buffers, cached = proc.meminfo_mb("Buffers", "Cached")
            print(end=block.CLEAR if not args.noclear else "\n")
            print(
                "%-8s Buffers MB: %.0f / Cached MB: %.0f / Sort: %s / Order: %s"
                % (common.strftime_now(), buffers, cached, args.sort, "ascending" if args.reverse else "descending")
            )
            print("%-8s %-8s %-16s %-8s %-8s %-8s %-10s %-10s" % FIELDS)
            for r in rows(items, args.sort, args.reverse)[: args.maxrows]:
                print(
                    "%-8d %-8.8s %-16s %-8d %-8d %-8d %9.1f%% %9.1f%%"
                    % (r.pid, _user(r.uid), r.comm, r.hits, r.misses, r.dirties, r.read_hit, r.write_hit)
                )
            sys.stdout.flush()
            if last:
                print("Detaching...")
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
