#!/usr/bin/env python3
"""ugc: summarize garbage collection events in high-level languages (USDT), with their durations.

Each collection runs between two USDT probes of the runtime (the table in rbcc._tools.languages: Java, Node,
Python, Ruby); -M keeps the longer ones, -F those whose description contains a text.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF, USDT
from rbcc._tools import common, languages
from rbcc._tools.languages import LANGUAGES, NODE_GC_TYPES, Gc, languages_with

__all__ = ["bpf_text", "build_parser", "describe", "main"]

EXAMPLES = """examples:
    rbcc tool ugc -l java 185        # trace Java GCs in process 185
    rbcc tool ugc -l ruby 1344 -m    # trace Ruby GCs reporting in ms
    rbcc tool ugc -M 10 -l java 185  # trace only Java GCs longer than 10ms
"""

GC_LANGUAGES = languages_with("gcs")

HEADER = r"""
struct gc_event_t {
    u64 probe_index;
    u64 elapsed_ns;
    u64 field1;
    u64 field2;
    u64 field3;
    u64 field4;
    char string1[32];
    char string2[32];
};
struct entry_t {
    u64 start_ns;
    u64 field1;
    u64 field2;
};

BPF_PERF_OUTPUT(gcs);
BPF_HASH(entry, u64, struct entry_t);   // the collection each thread is in
"""

# the start remembers the time (and what the runtime says then); the end reports the collection
PAIR = r"""
int trace_BEGIN(struct pt_regs *ctx) {
    u64 pid = bpf_get_current_pid_tgid();
    struct entry_t e = {};
    e.start_ns = bpf_ktime_get_ns();
BEGIN_SAVE
    entry.update(&pid, &e);
    return 0;
}

int trace_END(struct pt_regs *ctx) {
    u64 pid = bpf_get_current_pid_tgid();
    struct gc_event_t event = {};
    struct entry_t *e = entry.lookup(&pid);
    if (!e)
        return 0;   // began before tracing did
    u64 elapsed = bpf_ktime_get_ns() - e->start_ns;
    if (elapsed < MINIMUM)
        return 0;
    event.probe_index = INDEX;
    event.elapsed_ns = elapsed;
END_SAVE
    entry.delete(&pid);
    gcs.perf_submit(ctx, &event, sizeof(event));
    return 0;
}
"""


def build_parser(prog: str = "ugc", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Summarize garbage collection events in high-level languages.", EXAMPLES)
    p.add_argument("-l", "--language", choices=GC_LANGUAGES, default=language, help="language to trace")
    p.add_argument("pid", type=int, help="process id to attach to")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode: print the BPF program (for debugging purposes)"
    )
    p.add_argument(
        "-m", "--milliseconds", action="store_true", help="report times in milliseconds (default is microseconds)"
    )
    p.add_argument("-M", "--minimum", type=int, default=0, help="display only GCs longer than this many milliseconds")
    p.add_argument("-F", "--filter", type=str, help="display only GCs whose description contains this text")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure): a start and an end function per GC probe pair of ``args.language``."""
    text = HEADER
    for i, gc in enumerate(LANGUAGES[args.language].gcs):
        text += (
            PAIR.replace("BEGIN_SAVE\n", gc.begin_save.lstrip("\n"))
            .replace("END_SAVE\n", gc.end_save.lstrip("\n"))
            .replace("BEGIN", gc.begin)
            .replace("END", gc.end)
            .replace("MINIMUM", str(int(args.minimum) * 1000000))
            .replace("INDEX", str(i))
        )
    return text


def describe(gc: Gc, event: Any) -> str:
    """What ugc says of one collection: the probe pair's format over the event's fields."""
    if gc.describe == "node":
        return ", ".join(name for bit, name in NODE_GC_TYPES.items() if event.field1 & bit)
    fields = {name: getattr(event, name) for name in ("field1", "field2", "field3", "field4")}
    for name in ("string1", "string2"):
        fields[name] = getattr(event, name).decode("utf-8", "replace")
    return gc.describe % fields if "%(" in gc.describe else gc.describe


def main(argv: Sequence[str] | None = None, prog: str = "ugc", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    done, text = languages.begin(args, GC_LANGUAGES, bpf_text)
    if done is not None:
        return done
    gcs = LANGUAGES[args.language].gcs
    usdt = USDT(pid=args.pid)
    for gc in gcs:
        usdt.enable_probe_or_bail(gc.begin, f"trace_{gc.begin}")
        usdt.enable_probe_or_bail(gc.end, f"trace_{gc.end}")
    b = BPF(text=text, usdt_contexts=[usdt])
    start = time.time()

    def on_gc(cpu: int, data: int, size: int) -> None:
        e = b["gcs"].event(data)
        text = describe(gcs[e.probe_index], e)
        if args.filter and args.filter not in text:
            return
        elapsed = e.elapsed_ns / (1e6 if args.milliseconds else 1e3)
        print("%-8.3f %-8.2f %s" % (time.time() - start, elapsed, text), flush=True)

    b["gcs"].open_perf_buffer(on_gc)
    # the header says tracing has begun: the buffer is open by then, so no event is lost
    print("Tracing garbage collections in %s process %d... Ctrl-C to quit." % (args.language, args.pid))
    print("%-8s %-8s %-40s" % ("START", "TIME (ms)" if args.milliseconds else "TIME (us)", "DESCRIPTION"), flush=True)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
