#!/usr/bin/env python3
"""bpflist: list the processes that hold BPF programs and maps open, with their counts.

Like bcc's, it reads the links in /proc/PID/fd: a BPF program's descriptor is ``anon_inode:bpf-prog``,
a map's ``anon_inode:bpf-map`` (BTF objects and links show as ``btf`` and ``bpf_link``, which bcc
does not count either). With -v it also counts the kprobes and uprobes that tools created in tracefs,
by the pid in their event names: bcc's ``..._bcc_PID`` and libbpf's ``libbpf_PID_...`` (libbpf names
them so where it cannot use the perf PMU). Probes made through the kprobe/uprobe PMU, as rbcc and
libbpf do on any recent kernel, have no tracefs entry and are not counted. -vv prints those tracefs
files as well. It loads no BPF program of its own.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "count_fds", "count_probes", "main", "render"]

EXAMPLES = """examples:
    rbcc tool bpflist       # processes that hold BPF programs or maps
    rbcc tool bpflist -v    # also count the kprobes/uprobes they made in tracefs
    rbcc tool bpflist -vv   # and print those kprobe/uprobe events
"""

# bpf-prog, bpf-map (and any other bpf-* anonymous inode a kernel adds)
FD_LINK = re.compile(r"anon_inode:bpf-([\w-]+)")
# the pid of the process that made a tracefs probe, as bcc and libbpf name their events
PROBE_OWNER = (re.compile(r"_bcc_(\d+)\s"), re.compile(r"libbpf_(\d+)_"))

Counts = dict[tuple[int, str], int]


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("bpflist", "Display processes currently using BPF programs and maps", EXAMPLES)
    p.add_argument("-v", "--verbosity", action="count", default=0, help="count and display kprobes/uprobes as well")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """bpflist loads no BPF program: its C is empty (``--ebpf`` prints nothing)."""
    return ""


def count_fds(proc: str = "/proc") -> Counts:
    """(pid, kind) -> how many BPF objects of that kind ("prog", "map") the process holds open."""
    counts: Counts = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(proc, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # gone, or a kernel thread's
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            m = FD_LINK.match(link)
            if m:
                key = (int(entry), m.group(1))
                counts[key] = counts.get(key, 0) + 1
    return counts


def count_probes(kind: str, lines: Iterable[str], counts: Counts) -> None:
    """Add to ``counts`` the tracefs probes of ``kind`` ("kprobe", "uprobe") in ``lines`` (the lines of
    kprobe_events or uprobe_events), each to the pid its name carries."""
    for line in lines:
        for pattern in PROBE_OWNER:
            m = pattern.search(line)
            if m:
                key = (int(m.group(1)), kind)
                counts[key] = counts.get(key, 0) + 1
                break


def comm_of(pid: int, proc: str = "/proc") -> str:
    try:
        with open(f"{proc}/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "[unknown]"


def render(counts: Counts, comm: dict[int, str]) -> list[str]:
    """bcc's table: PID COMM TYPE COUNT, by pid, the TYPE column as wide as its longest entry."""
    width = max((len(kind) for _, kind in counts), default=0) + 1
    fmt = f"%-6s %-16s %-{width}s %s"
    lines = [fmt % ("PID", "COMM", "TYPE", "COUNT")]
    for (pid, kind), n in sorted(counts.items(), key=lambda item: item[0][0]):
        lines.append(fmt % (pid, comm.get(pid, "[unknown]"), kind, n))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("bpflist", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args))
        return 0
    counts: Counts = {}
    if args.verbosity > 0:
        from rbcc import _core

        tracing = _core.tracefs()  # mounted by rbcc where it is not yet
        for kind in ("kprobe", "uprobe"):
            path = os.path.join(tracing, f"{kind}_events")
            try:
                with open(path) as f:
                    lines = f.readlines()
            except OSError:  # no such probes on this kernel (CONFIG_KPROBE_EVENTS unset, ...)
                lines = []
            if args.verbosity > 1:
                print(f"open {kind}s:")
                for line in lines:
                    print(line.strip())
                print()
            count_probes(kind, lines, counts)
    fds = count_fds()
    for key, n in fds.items():
        counts[key] = counts.get(key, 0) + n
    comm = {pid: comm_of(pid) for pid, _ in counts}
    for line in render(counts, comm):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
