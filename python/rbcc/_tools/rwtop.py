"""What filetop and dirtop share: bcc's two top-style tools count reads, writes and their bytes
(block.RW_COUNTS) at the same system calls, per file in filetop and per directory in dirtop, with the
same -s/-p options, and print a screen of rows sorted by -s each interval.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

from .. import BPF
from . import block, common

# bcc gives dirtop filetop's description; so does rbcc, with where the counts are taken
DESCRIPTION = (
    "File reads and writes by process\n\n"
    "Counted at the read, pread64, write and pwrite64 syscalls, not in vfs_read/vfs_write:\n"
    "reads and writes the kernel makes itself are not seen."
)

# The end of the tool's do_entry(fd, count, is_read): the call counted under the key at KEY.
ADD_TO_COUNTS = r"""    struct val_t zero = {};
    struct val_t *val = counts.lookup_or_try_init(KEY, &zero);
    if (val)
        add_rw(val, count, is_read);
    return 0;"""


def add_sort_and_pid(p: argparse.ArgumentParser) -> None:
    """-s (the column the rows are sorted by) and -p, as bcc's two tools have them."""
    p.add_argument(
        "-s",
        "--sort",
        default="all",
        choices=["all", "reads", "writes", "rbytes", "wbytes"],
        help="sort column, default all",
    )
    p.add_argument("-p", "--pid", type=int, metavar="PID", dest="tgid", help="trace this PID only")


def fill(text: str, args: argparse.Namespace, key: str) -> str:
    """``text`` with the counting C (RW_COUNTS, ADD_TO_COUNTS under the key at ``key``), the syscall
    probes (RW_SYSCALLS), file_of_fd (FILE_OF_FD) and -p's filter (TGID_FILTER)."""
    return (
        text.replace("RW_COUNTS", block.RW_COUNTS)
        .replace("ADD_TO_COUNTS", ADD_TO_COUNTS.replace("KEY", key))
        .replace("RW_SYSCALLS", block.RW_SYSCALLS)
        .replace("FILE_OF_FD", block.FILE_OF_FD)
        .replace("TGID_FILTER", common.pid_condition("tgid", args.tgid))
    )


def _sort_key(args: argparse.Namespace) -> Callable[[tuple[Any, Any]], Any]:
    if args.sort == "all":
        return lambda kv: kv[1].rbytes + kv[1].wbytes + kv[1].reads + kv[1].writes
    return lambda kv: getattr(kv[1], args.sort)


def screens(b: BPF, args: argparse.Namespace) -> Iterator[list[tuple[Any, Any]]]:
    """After bcc's "Tracing..." line, each interval's rows (key, counts) of the map ``counts``: the -r
    largest by -s, for the caller to print under its header on a fresh screen (block.top_screens); the
    map is emptied after each, so that a screen shows its interval only."""
    print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
    counts = b["counts"]
    for _ in block.top_screens(args):
        yield sorted(counts.items(), key=_sort_key(args), reverse=True)[: args.maxrows]
        counts.clear()
