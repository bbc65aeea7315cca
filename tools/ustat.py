#!/usr/bin/env python3
"""ustat: activity stats of high-level language processes (method calls, GCs, allocations, class
loads, exceptions, threads per second), from their USDT probes, refreshed every interval.

The processes are found by their comm (java, node, perl, php, python*, ruby/irb, tclsh/wish); each is
traced through its own USDT probes (the table in rbcc._tools.languages), which libbpf enables per process.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF, USDT
from rbcc._tools import common
from rbcc._tools.languages import LANGUAGES, languages_with, processes_of
from rbcc.errors import BPFError, USDTException

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
  rbcc tool ustat              # stats for all languages, 1 second refresh
  rbcc tool ustat -C           # don't clear the screen
  rbcc tool ustat -l java      # Java processes only
  rbcc tool ustat 5            # 5 second summaries
  rbcc tool ustat 5 10         # 5 second summaries, 10 times only
"""

STAT_LANGUAGES = languages_with("stat")
CATEGORIES = ["THREAD", "METHOD", "OBJNEW", "CLOAD", "EXCP", "GC"]
COLUMNS = [("METHOD", "METHOD/s", 10), ("GC", "GC/s", 6), ("OBJNEW", "OBJNEW/s", 10), ("CLOAD", "CLOAD/s", 8)]
COLUMNS += [("EXCP", "EXC/s", 6), ("THREAD", "THR/s", 6)]

COUNTER = r"""
BPF_HASH(FUNC_counts, u32, u64);   // pid -> events

int FUNC(void *ctx) {
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    FUNC_counts.increment(tgid);
    return 0;
}
"""


def build_parser(prog: str = "ustat", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Activity stats from high-level languages.", EXAMPLES)
    p.add_argument(
        "-l", "--language", choices=STAT_LANGUAGES, default=language, help="language to trace (default: all languages)"
    )
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument(
        "-S", "--sort", choices=sorted(c.lower() for c in CATEGORIES), help="sort by this field (descending order)"
    )
    p.add_argument("-r", "--maxrows", default=20, type=int, help="maximum rows to print, default 20")
    p.add_argument(
        "-d", "--debug", action="store_true", help="Print the resulting BPF program (for debugging purposes)"
    )
    p.add_argument("interval", nargs="?", default=1, type=int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", default=99999999, type=int, help="number of outputs")
    return p


def _languages(args: argparse.Namespace) -> list[str]:
    return [args.language] if args.language else STAT_LANGUAGES


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure): a counter per process for each probe of each language traced."""
    return "".join(
        COUNTER.replace("FUNC", f"{lang}_{probe}") for lang in _languages(args) for probe in LANGUAGES[lang].stat
    )


class _Process:
    """One traced process's USDT probes: those it has are enabled; attaching them to a BPF object is
    allowed to fail (the process may have ended since it was found), as bcc allows it."""

    def __init__(self, pid: int, lang: str) -> None:
        self.pid = pid
        self.usdt = USDT(pid=pid)
        self.enabled = 0
        for probe in LANGUAGES[lang].stat:
            try:
                self.usdt.enable_probe(probe, f"{lang}_{probe}")
                self.enabled += 1
            except USDTException:
                pass  # a runtime built without this probe (or without any)

    def attach_to(self, bpf: Any, ignore_pid: bool = False) -> None:
        try:
            self.usdt.attach_to(bpf, ignore_pid)
        except (BPFError, OSError):
            print("failed to instrument %d" % self.pid, file=sys.stderr)


def find_targets(args: argparse.Namespace) -> dict[int, tuple[str, str]]:
    """pid -> (language, command line) of the processes of the languages traced."""
    found: dict[int, tuple[str, str]] = {}
    for lang in _languages(args):
        for pid, cmdline in processes_of(LANGUAGES[lang].procnames).items():
            found.setdefault(pid, (lang, cmdline))
    return found


def load(args: argparse.Namespace, text: str, targets: dict[int, tuple[str, str]]) -> BPF:
    processes = []
    for pid, (lang, _) in sorted(targets.items()):
        try:
            process = _Process(pid, lang)
        except (USDTException, OSError):
            print("failed to instrument %d" % pid, file=sys.stderr)
            continue
        if process.enabled:
            processes.append(process)
    return BPF(text=text, usdt_contexts=processes)


def counts(b: BPF, args: argparse.Namespace, targets: dict[int, tuple[str, str]]) -> dict[int, dict[str, int]]:
    """pid -> category -> events since the last call (the maps are cleared)."""
    result = {pid: dict.fromkeys(CATEGORIES, 0) for pid in targets}
    for lang in _languages(args):
        for probe, category in LANGUAGES[lang].stat.items():
            table = b[f"{lang}_{probe}_counts"]
            for k, v in table.items():
                if k.value in result:
                    result[k.value][category] += v.value
            table.clear()
    return result


def print_table(
    args: argparse.Namespace, stats: dict[int, dict[str, int]], targets: dict[int, tuple[str, str]]
) -> None:
    if args.noclear:
        print()
    else:
        print("\033[H\033[2J", end="")
    with open("/proc/loadavg") as f:
        print("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), f.read()))
    print("%-6s %-20s " % ("PID", "CMDLINE") + " ".join("%-*s" % (w, title) for _, title, w in COLUMNS))
    if args.sort:
        order = sorted(stats.items(), key=lambda kv: -kv[1].get(args.sort.upper(), 0))
    else:
        order = sorted(stats.items())
    for pid, row in order[: args.maxrows]:
        rates = " ".join("%-*d" % (w, row[cat] / args.interval) for cat, _, w in COLUMNS)
        print("%-6d %-20s %s" % (pid, targets[pid][1][:20], rates))
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None, prog: str = "ustat", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    text = bpf_text(args)
    if args.debug or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    print("Tracing... Output every %d secs. Hit Ctrl-C to end" % args.interval, flush=True)
    b: BPF | None = None
    targets: dict[int, tuple[str, str]] = {}
    try:
        for _ in range(args.count):
            # processes come and go: the probes follow them, attached anew when the set changes
            found = find_targets(args)
            if b is None or found.keys() != targets.keys():
                if b is not None:
                    b.cleanup()
                targets = found
                b = load(args, text, targets)
                if args.debug:
                    for lang in _languages(args):
                        pids = [str(p) for p, (lg, _) in targets.items() if lg == lang]
                        print("Attached to %s processes:" % lang, ", ".join(pids))
            exiting = False
            try:
                time.sleep(args.interval)
            except KeyboardInterrupt:
                exiting = True  # print this interval's table, then stop, as bcc does
            print_table(args, counts(b, args, targets), targets)
            if exiting:
                break
    finally:
        if b is not None:
            b.cleanup()
    print("Detaching...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
