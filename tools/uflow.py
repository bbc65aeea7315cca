#!/usr/bin/env python3
"""uflow: trace method execution flow in high-level languages (USDT), indented by call depth.

Each entry and return of a method comes from the runtime's USDT probes (the table in rbcc._tools.languages:
Java, Perl, PHP, Python, Ruby, Tcl); -M and -C keep methods and classes starting with a prefix.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF, USDT
from rbcc._tools import common, languages
from rbcc._tools.languages import LANGUAGES, languages_with, read_names

__all__ = ["bpf_text", "build_parser", "main", "probes"]

EXAMPLES = """examples:
    rbcc tool uflow -l java 185                # trace Java method calls in process 185
    rbcc tool uflow -l ruby 134                # trace Ruby method calls in process 134
    rbcc tool uflow -M indexOf -l java 185     # trace only 'indexOf'-prefixed methods
    rbcc tool uflow -C '<stdin>' -l python 180 # trace only REPL-defined methods
"""

FLOW_LANGUAGES = languages_with("calls")

HEADER = r"""
struct call_t {
    u64 depth;      // the top bit set for a return
    u64 pid;        // tgid << 32 | tid
    char clazz[80];
    char method[80];
};

BPF_PERF_OUTPUT(calls);
BPF_HASH(entry, u64, u64);   // the call depth of each thread
"""

# true when `actual` starts with the prefix (a loop the verifier bounds by the prefix's length)
PREFIX = r"""
static inline bool prefix_NAME(char *actual) {
    char expected[] = "TEXT";
    for (int i = 0; i < sizeof(expected) - 1; ++i) {
        if (expected[i] != actual[i])
            return false;
    }
    return true;
}
"""

PROBE = r"""
int FUNC(struct pt_regs *ctx) {
    u64 *depth, zero = 0, clazz = 0, method = 0;
    struct call_t data = {};
READ_NAMES
FILTERS
    data.pid = bpf_get_current_pid_tgid();
    depth = entry.lookup_or_try_init(&data.pid, &zero);
    if (!depth)
        depth = &zero;
UPDATE
    calls.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""

ENTER = "    data.depth = *depth + 1;\n    ++(*depth);\n"
LEAVE = "    data.depth = *depth | (1ULL << 63);\n    if (*depth)\n        --(*depth);\n"


def build_parser(prog: str = "uflow", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Trace method execution flow in high-level languages.", EXAMPLES)
    p.add_argument("-l", "--language", choices=FLOW_LANGUAGES, default=language, help="language to trace")
    p.add_argument("pid", type=int, help="process id to attach to")
    p.add_argument("-M", "--method", help="trace only calls to methods starting with this prefix")
    p.add_argument("-C", "--class", dest="clazz", help="trace only calls to classes starting with this prefix")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode: print the BPF program (for debugging purposes)"
    )
    return p


def probes(language: str) -> list[tuple[str, str, bool]]:
    """(USDT probe, BPF function, is a return) of every probe uflow follows for ``language``."""
    calls = LANGUAGES[language].calls
    assert calls is not None
    pairs = [(calls.flow_entry or calls.entry, calls.ret), *calls.more]
    out = []
    for i, (entry, ret) in enumerate(pairs):
        suffix = "" if i == 0 else str(i)
        out += [(entry, f"{language}_entry{suffix}", False), (ret, f"{language}_return{suffix}", True)]
    return out


def _c_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure) for ``args.language``: a function per entry and return probe, with the -C/-M filters."""
    calls = LANGUAGES[args.language].calls
    assert calls is not None
    text = HEADER
    filters = ""
    if args.clazz:
        text += PREFIX.replace("NAME", "class").replace("TEXT", _c_string(args.clazz))
        filters += "    if (!prefix_class(data.clazz))\n        return 0;\n"
    if args.method:
        text += PREFIX.replace("NAME", "method").replace("TEXT", _c_string(args.method))
        filters += "    if (!prefix_method(data.method))\n        return 0;\n"
    names = read_names(calls, "data.clazz", "data.method")
    for _, func, is_return in probes(args.language):
        text += (
            PROBE.replace("FUNC", func)
            .replace("READ_NAMES\n", names)
            .replace("FILTERS\n", filters)
            .replace("UPDATE\n", LEAVE if is_return else ENTER)
        )
    return text


def main(argv: Sequence[str] | None = None, prog: str = "uflow", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    done, text = languages.begin(args, FLOW_LANGUAGES, bpf_text)
    if done is not None:
        return done
    usdt = USDT(pid=args.pid)
    for probe, func, _ in probes(args.language):
        usdt.enable_probe_or_bail(probe, func)
    b = BPF(text=text, usdt_contexts=[usdt])
    start = time.time()

    def on_call(cpu: int, data: int, size: int) -> None:
        e = b["calls"].event(data)
        depth = e.depth & ~(1 << 63)
        arrow = "<- " if e.depth & (1 << 63) else "-> "
        name = e.clazz.decode("utf-8", "replace") + "." + e.method.decode("utf-8", "replace")
        # bcc's column says us but shows seconds since the start, as here
        line = "%-3d %-6d %-6d %-8.3f %-40s" % (
            cpu,
            e.pid >> 32,
            e.pid & 0xFFFFFFFF,
            time.time() - start,
            "  " * (depth - 1) + arrow + name,
        )
        print(line.rstrip(), flush=True)

    b["calls"].open_perf_buffer(on_call)
    # the header says tracing has begun: the buffer is open by then, so no event is lost
    print("Tracing method calls in %s process %d... Ctrl-C to quit." % (args.language, args.pid))
    hint = LANGUAGES[args.language].hint
    if hint:
        print(hint)
    print("%-3s %-6s %-6s %-8s %s" % ("CPU", "PID", "TID", "TIME(us)", "METHOD"), flush=True)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
