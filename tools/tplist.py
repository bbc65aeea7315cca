#!/usr/bin/env python3
"""tplist: list kernel tracepoints (with their fields) or the USDT probes of a binary or process.

Tracepoints come from tracefs (mounted when missing); USDT probes from the binary's .note.stapsdt
notes, read by rbcc's USDT class (for -p PID: the executable and every library the process maps).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from collections.abc import Sequence

from rbcc import USDT, _core
from rbcc._tools import common
from rbcc.usdt import USDTProbe, USDTProbeLocation

__all__ = ["bpf_text", "build_parser", "format_fields", "main", "tracepoints"]

EXAMPLES = """examples:
    rbcc tool tplist                          # all kernel tracepoints
    rbcc tool tplist 'sched:*'                # the scheduler's tracepoints
    rbcc tool tplist -v sched:sched_switch    # a tracepoint and its fields
    rbcc tool tplist -l c                     # the USDT probes of libc
    rbcc tool tplist -l /usr/bin/python3 -v   # python's probes, with their sites and arguments counts
    rbcc tool tplist -p 1234 -vv '*gc*'       # probes of a process, with each site's arguments
"""

# "field:unsigned int prev_pid;	offset:...": the declaration between "field:" and the first ';'
_FIELD = re.compile(r"field:([^;]*);")


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("tplist", "Display kernel tracepoints or USDT probes and their formats.", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, default=None, help="List USDT probes in the specified process")
    p.add_argument("-l", "--lib", default="", help="List USDT probes in the specified library or executable")
    p.add_argument(
        "-v",
        dest="verbosity",
        action="count",
        default=0,
        help="Increase verbosity level (print variables, arguments, etc.)",
    )
    p.add_argument(dest="filter", nargs="?", help="A filter that specifies which probes/tracepoints to print")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """tplist loads no BPF program: it reads tracefs and ELF notes only."""
    return ""


def format_fields(text: str) -> list[str]:
    """The lines tplist -v prints for a tracepoint's format file: each field but the common_ ones, as
    '    TYPE NAME;'."""
    out = []
    for line in text.splitlines():
        found = _FIELD.search(line)
        if found is None:
            continue
        parts = found.group(1).split()
        if not parts or parts[-1].startswith("common_"):
            continue
        out.append("    %s %s;" % (" ".join(parts[:-1]), parts[-1]))
    return out


def tracepoints(events: str, pattern: str | None) -> list[tuple[str, str]]:
    """(category, event) of each tracepoint under ``events`` whose "category:event" the glob matches."""
    found = []
    for category in sorted(os.listdir(events)):
        cdir = os.path.join(events, category)
        if not os.path.isdir(cdir):
            continue
        for event in sorted(os.listdir(cdir)):
            if os.path.isdir(os.path.join(cdir, event)) and (
                not pattern or fnmatch.fnmatch(f"{category}:{event}", pattern)
            ):
                found.append((category, event))
    return found


def print_tracepoints(args: argparse.Namespace) -> None:
    events = os.path.join(_core.tracefs(), "events")
    for category, event in tracepoints(events, args.filter):
        print(f"{category}:{event}")
        if args.verbosity > 0:
            with open(os.path.join(events, category, event, "format")) as f:
                for line in format_fields(f.read()):
                    print(line)


def _print_location(index: int, location: USDTProbeLocation) -> None:
    print("  location #%d %s" % (index + 1, location))
    for i in range(location.num_arguments):
        print("    argument #%d %s" % (i + 1, location.get_argument(i)))


def _print_probe(probe: USDTProbe, verbosity: int) -> None:
    if verbosity == 0:
        print("%s %s" % (probe.bin_path.decode(), probe.short_name()))
        return
    print(probe)
    if verbosity > 1:
        for i in range(probe.num_locations):
            _print_location(i, probe.get_location(i))
    else:
        print("  %d location(s)" % probe.num_locations)
        print("  %d argument(s)" % probe.num_arguments)


def print_usdt(args: argparse.Namespace) -> None:
    seen: set[str] = set()
    for probe in USDT(pid=args.pid, path=args.lib or None).enumerate_probes():
        name = probe.short_name()
        # a probe defined in several binaries of a process is listed once, as bcc does
        if (args.filter and not fnmatch.fnmatch(name, args.filter)) or name in seen:
            continue
        seen.add(name)
        _print_probe(probe, args.verbosity)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tplist", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        return 0
    if args.pid or args.lib:
        print_usdt(args)
    else:
        print_tracepoints(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
