#!/usr/bin/env python3
"""ucalls: summarize method calls in high-level languages (USDT) and/or syscalls, per method.

Method calls come from the runtime's USDT entry/return probes (the table in rbcc._tools.languages: Java,
Perl, PHP, Python, Ruby, Tcl); syscalls (-S) from the raw_syscalls tracepoints, for the process only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF, USDT
from rbcc._tools import common
from rbcc._tools.languages import LANGUAGES, languages_with, read_names, resolve_language
from rbcc.syscall import syscall_name

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool ucalls -l java 185        # trace Java calls and print statistics on ^C
    rbcc tool ucalls -l python 2020 1   # trace Python calls and print every second
    rbcc tool ucalls -l java 185 -S     # trace Java calls and syscalls
    rbcc tool ucalls 6712 -S            # trace only syscall counts
    rbcc tool ucalls -l ruby 1344 -T 10 # trace top 10 Ruby method calls
    rbcc tool ucalls -l ruby 1344 -L    # trace Ruby calls including latency
    rbcc tool ucalls -l php 443 -LS     # trace PHP calls and syscalls with latency
    rbcc tool ucalls -l python 2020 -mL # trace Python calls including latency in ms
"""

CALL_LANGUAGES = languages_with("calls")

TYPES = r"""
struct method_t {
    char clazz[80];
    char method[80];
};
struct entry_t {
    u64 pid;
    struct method_t method;
};
struct info_t {
    u64 num_calls;
    u64 total_ns;
};
struct syscall_entry_t {
    u64 timestamp;
    u64 id;
};
"""

# an entry counts the method (or, with -L, remembers when this thread entered it)
ENTRY = r"""
int trace_entry(struct pt_regs *ctx) {
    u64 clazz = 0, method = 0;
    struct entry_t data = {};
READ_NAMES
#ifdef LATENCY
    u64 ts = bpf_ktime_get_ns();
    data.pid = bpf_get_current_pid_tgid();
    entry.update(&data, &ts);
#else
    counts.increment(data.method);
#endif
    return 0;
}
"""

# -L: the return adds the time since this thread's entry of the same method (a recursive call's inner
# entries overwrite the outer one's timestamp, as in bcc)
RETURN = r"""
int trace_return(struct pt_regs *ctx) {
    u64 clazz = 0, method = 0;
    struct entry_t data = {};
    struct info_t zero = {};
READ_NAMES
    data.pid = bpf_get_current_pid_tgid();
    u64 *start = entry.lookup(&data);
    if (!start)
        return 0;   // entered before tracing began
    struct info_t *info = times.lookup_or_try_init(&data.method, &zero);
    if (info) {
        info->num_calls += 1;
        info->total_ns += bpf_ktime_get_ns() - *start;
    }
    entry.delete(&data);
    return 0;
}
"""

SYSCALLS = r"""
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u64 pid = bpf_get_current_pid_tgid();
    u64 id = args->id;
    if ((pid >> 32) != TARGET)
        return 0;
#ifdef LATENCY
    struct syscall_entry_t data = {.timestamp = bpf_ktime_get_ns(), .id = id};
    sysentry.update(&pid, &data);
#else
    syscounts.increment(id);
#endif
    return 0;
}
"""

SYSCALL_RETURN = r"""
TRACEPOINT_PROBE(raw_syscalls, sys_exit) {
    u64 pid = bpf_get_current_pid_tgid();
    struct info_t zero = {};
    if ((pid >> 32) != TARGET)
        return 0;
    struct syscall_entry_t *e = sysentry.lookup(&pid);
    if (!e)
        return 0;   // entered before tracing began
    u64 id = e->id;
    struct info_t *info = systimes.lookup_or_try_init(&id, &zero);
    if (info) {
        info->num_calls += 1;
        info->total_ns += bpf_ktime_get_ns() - e->timestamp;
    }
    sysentry.delete(&pid);
    return 0;
}
"""


def build_parser(prog: str = "ucalls", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Summarize method calls in high-level languages.", EXAMPLES)
    p.add_argument("pid", type=int, help="process id to attach to")
    p.add_argument("interval", type=int, nargs="?", help="print every specified number of seconds")
    p.add_argument(
        "-l",
        "--language",
        choices=CALL_LANGUAGES + ["none"],
        default=language,
        help="language to trace (if none, trace syscalls only)",
    )
    p.add_argument("-T", "--top", type=int, help="number of most frequent/slow calls to print")
    p.add_argument(
        "-L", "--latency", action="store_true", help="record method latency from enter to exit (except recursive calls)"
    )
    p.add_argument("-S", "--syscalls", action="store_true", help="record syscall latency (adds overhead)")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode: print the BPF program (for debugging purposes)"
    )
    p.add_argument(
        "-m", "--milliseconds", action="store_true", help="report times in milliseconds (default is microseconds)"
    )
    return p


def _language(args: argparse.Namespace) -> str | None:
    return None if args.language in (None, "none") else str(args.language)


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure): the method probes of ``args.language`` (None or "none": syscalls only), the
    syscall tracepoints with -S, counts or (-L) times."""
    lang = _language(args)
    parts = ["#define LATENCY\n" if args.latency else "", TYPES]
    if args.latency:
        parts.append("BPF_HASH(times, struct method_t, struct info_t);\nBPF_HASH(entry, struct entry_t, u64);\n")
        if args.syscalls:
            parts.append("BPF_HASH(systimes, u64, struct info_t);\nBPF_HASH(sysentry, u64, struct syscall_entry_t);\n")
    else:
        parts.append("BPF_HASH(counts, struct method_t, u64);\n")
        if args.syscalls:
            parts.append("BPF_HASH(syscounts, u64, u64);\n")
    if lang is not None:
        calls = LANGUAGES[lang].calls
        assert calls is not None
        names = read_names(calls, "data.method.clazz", "data.method.method")
        parts.append(ENTRY.replace("READ_NAMES\n", names))
        if args.latency:
            parts.append(RETURN.replace("READ_NAMES\n", names))
    if args.syscalls:
        parts.append(SYSCALLS.replace("TARGET", str(int(args.pid))))
        if args.latency:
            parts.append(SYSCALL_RETURN.replace("TARGET", str(int(args.pid))))
    return "".join(parts)


def main(argv: Sequence[str] | None = None, prog: str = "ucalls", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def _usdt(args: argparse.Namespace, lang: str) -> USDT:
    calls = LANGUAGES[lang].calls
    assert calls is not None
    usdt = USDT(pid=args.pid)
    usdt.enable_probe_or_bail(calls.entry, "trace_entry")
    if args.latency:
        usdt.enable_probe_or_bail(calls.ret, "trace_return")
    return usdt


def rows(b: BPF, args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(method or syscall, calls, total ns) of the maps so far, in bcc's order (ascending)."""
    out: list[tuple[str, int, int]] = []

    def dec(s: bytes) -> str:
        return s.decode("utf-8", "replace")

    if args.latency:
        out += [(f"{dec(k.clazz)}.{dec(k.method)}", v.num_calls, v.total_ns) for k, v in b["times"].items()]
        if args.syscalls:
            out += [(dec(syscall_name(k.value)), v.num_calls, v.total_ns) for k, v in b["systimes"].items()]
    else:
        out += [(f"{dec(k.clazz)}.{dec(k.method)}", v.value, 0) for k, v in b["counts"].items()]
        if args.syscalls:
            out += [(dec(syscall_name(k.value)), v.value, 0) for k, v in b["syscounts"].items()]
    return sorted(out, key=lambda r: r[2] if args.latency else r[1])


def print_rows(data: list[tuple[str, int, int]], args: argparse.Namespace) -> None:
    print()
    if args.latency:
        print("%-50s %8s %8s" % ("METHOD", "# CALLS", "TIME (ms)" if args.milliseconds else "TIME (us)"))
    else:
        print("%-50s %8s" % ("METHOD", "# CALLS"))
    if args.top:
        data = data[-args.top :]
    for name, calls, ns in data:
        if args.latency:
            print("%-50s %8d %6.2f" % (name, calls, ns / (1e6 if args.milliseconds else 1e3)))
        else:
            print("%-50s %8d" % (name, calls))
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    args.language = resolve_language(args, CALL_LANGUAGES)
    lang = _language(args)
    if lang is None and not args.syscalls:
        print("Nothing to do; use -S to trace syscalls.")
        return 1
    text = bpf_text(args)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    b = BPF(text=text, usdt_contexts=[_usdt(args, lang)] if lang else [])
    if args.syscalls:
        print("Attached kernel tracepoints for syscall tracing.")
    print("Tracing calls in process %d (language: %s)... Ctrl-C to quit." % (args.pid, lang or "none"))
    if lang and LANGUAGES[lang].hint:
        print(LANGUAGES[lang].hint)
    sys.stdout.flush()
    with b:
        for last in common.intervals(args.interval or 99999999, None):
            print_rows(rows(b, args), args)
            if last or not args.interval:
                if args.syscalls:
                    print("Detaching kernel probes, please wait...")
                break
            tables = ["times", "systimes"] if args.latency else ["counts", "syscounts"]
            for table in tables if args.syscalls else tables[:1]:
                b[table].clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
