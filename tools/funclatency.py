#!/usr/bin/env python3
"""funclatency: time functions, tracepoint pairs and USDT probe pairs, and print latency as a histogram.

User functions (``c:read``, ``/path/binary:func``, ``p:lib:func``) are timed from uprobe to uretprobe,
kernel functions (``vfs_read``) from kprobe to kretprobe where the kernel has kprobes; where it has
none, funclatency says so in one line, and the system-call tracepoint pair times system calls instead
(``t:syscalls:sys_enter_read`` runs until ``sys_exit_read`` in the same thread). Without -l, nested or
recursive calls of a thread record only the innermost call, as bcc's; with -l LEVEL, the outermost
LEVEL levels are timed.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence

from rbcc._specs.pattern import PatternSpec, parse_pattern
from rbcc._tools import common, funcs
from rbcc.errors import AttachError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = f"""examples:
    rbcc tool funclatency do_sys_open       # time the do_sys_open() kernel function
    rbcc tool funclatency c:read            # time the read() C library function
    rbcc tool funclatency -u vfs_read       # time vfs_read(), in microseconds
    rbcc tool funclatency -m do_nanosleep   # time do_nanosleep(), in milliseconds
    rbcc tool funclatency -i 2 -d 10 c:open # output every 2 seconds, for duration 10s
    rbcc tool funclatency -mTi 5 vfs_read   # output every 5 seconds, with timestamps
    rbcc tool funclatency -p 181 vfs_read   # time process 181 only
    rbcc tool funclatency 'vfs_fstat*'      # time both vfs_fstat() and vfs_fstatat()
    rbcc tool funclatency 'c:*printf'       # time the *printf family of functions
    rbcc tool funclatency -F 'vfs_r*'       # show one histogram per matched function
    rbcc tool funclatency -l 3 ./prog:walk  # time the outermost 3 levels of recursive walk()
    rbcc tool funclatency -m t:syscalls:sys_enter_clock_nanosleep   # system call latency, no kprobes
    rbcc tool funclatency u:/usr/lib/postgresql/15/bin/postgres:query__start   # USDT start/done pair

patterns: [p:|t:|u:][library:]function, '*' wildcards (regular expressions with -r)
    func            a kernel function (kprobes)
    lib:func        a function of a library ("c" is libc) or program (uprobes), also p:lib:func
    t:cat:event     a tracepoint, timed to its partner
    u:lib:probe     a USDT probe, timed to its partner

{textwrap.fill(funcs.PAIR_RULE, 100)}
"""

BPF_TEXT = r"""
BPF_ARRAY(avg, u64, 2);

struct call_t {
    u64 ts;
    u64 fn;
};

STORAGE

static __always_inline int on_entry(struct pt_regs *ctx, u64 fn)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = id;
    if (FILTER)
        return 0;
    u64 ts = bpf_ktime_get_ns();
    PUSH
    return 0;
}

int trace_return(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = id;
    u64 now = bpf_ktime_get_ns(), delta, fn;
    POP
    u32 total = 0, count = 1;
    avg.atomic_increment(total, delta);
    avg.atomic_increment(count);
    FACTOR
    STORE
    return 0;
}
"""

# Without -l: one start per thread, overwritten by a nested entry (so only the innermost call counts)
SIMPLE_STORAGE = "BPF_HASH(start, u32, struct call_t);"
SIMPLE_PUSH = """struct call_t call = {.ts = ts, .fn = fn};
    start.update(&tid, &call);"""
SIMPLE_POP = """struct call_t *call = start.lookup(&tid);
    if (call == 0)
        return 0;  // its entry came before tracing began
    delta = now - call->ts;
    fn = call->fn;
    start.delete(&tid);"""

# With -l LEVEL: every nesting level of a thread is counted, the outermost LEVEL ones are timed
LEVEL_STORAGE = """#define LEVEL {level}
struct calls_t {{
    u32 depth;
    struct call_t at[LEVEL];
}};
BPF_HASH(start, u32, struct calls_t);"""
LEVEL_PUSH = """struct calls_t *calls = start.lookup(&tid);
    if (calls == 0) {
        struct calls_t none = {};
        start.update(&tid, &none);
        calls = start.lookup(&tid);
        if (calls == 0)
            return 0;
    }
    u32 depth = calls->depth;
    if (depth < LEVEL) {
        calls->at[depth].ts = ts;
        calls->at[depth].fn = fn;
    }
    calls->depth = depth + 1;"""
LEVEL_POP = """struct calls_t *calls = start.lookup(&tid);
    if (calls == 0 || calls->depth == 0)
        return 0;
    u32 depth = calls->depth - 1;
    calls->depth = depth;
    if (depth >= LEVEL)
        return 0;  // deeper than the levels timed
    delta = now - calls->at[depth].ts;
    fn = calls->at[depth].fn;
    if (depth == 0)
        start.delete(&tid);"""

KEYED_STORAGE = """struct fn_pid_t {
    u64 fn;
    u64 pid;
};
struct fn_key_t {
    struct fn_pid_t key;  // the section: bcc's histograms take a struct key's first field as it
    u64 slot;
};
BPF_HISTOGRAM(dist, struct fn_key_t);"""
KEYED_STORE = """struct fn_key_t key = {.key = {.fn = fn, .pid = PID}, .slot = bpf_log2l(delta)};
    dist.atomic_increment(key);"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("funclatency", "Time functions and print latency as a histogram", EXAMPLES)
    funcs.add_histogram_options(p)
    p.add_argument("-F", "--function", action="store_true", help="show a separate histogram per function")
    p.add_argument(
        "-r", "--regexp", action="store_true", help='use regular expressions. Default is "*" wildcards only.'
    )
    p.add_argument("-l", "--level", type=common.positive_int, help="set the level of nested or recursive functions")
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program (for debugging purposes)")
    p.add_argument("pattern", help="search expression for functions")
    return p


def keyed(args: argparse.Namespace, pattern: PatternSpec) -> bool:
    """Histograms per function (-F), and per process for user-space targets traced without -p (bcc)."""
    return bool(args.function or (funcs.is_user(pattern) and not args.pid))


def bpf_text(args: argparse.Namespace, count: int = 1) -> str:
    """The C for these options and ``count`` targets (pure)."""
    pattern = parse_pattern(args.pattern, args.regexp)
    level = args.level if args.level and args.level > 1 else 0
    storage = LEVEL_STORAGE.format(level=level) if level else SIMPLE_STORAGE
    if keyed(args, pattern):
        storage += "\n" + KEYED_STORAGE
        store = KEYED_STORE.replace("PID", "tgid" if funcs.is_user(pattern) else "0")
    else:
        storage += "\nBPF_HISTOGRAM(dist);"
        store = "dist.atomic_increment(bpf_log2l(delta));"
    return (
        BPF_TEXT.replace("STORAGE", storage)
        .replace("PUSH", LEVEL_PUSH if level else SIMPLE_PUSH)
        .replace("POP", LEVEL_POP if level else SIMPLE_POP)
        .replace("FACTOR", funcs.scale_c(args))
        .replace("STORE", store)
        .replace("FILTER", common.pid_condition("tgid", args.pid))
    ) + funcs.entry_functions(count)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("funclatency", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    pattern = parse_pattern(args.pattern, args.regexp)
    try:
        found = funcs.targets(pattern, args.pid)
    except AttachError as e:
        if "No functions matched" not in str(e):
            raise
        print('0 functions matched by "%s". Exiting.' % args.pattern)
        return 1
    text = bpf_text(args, len(found))
    if funcs.printed_only(
        args,
        text,
        pattern,
        "time a system call with its tracepoint pair instead: funclatency t:syscalls:sys_enter_NAME",
    ):
        return 0
    b = funcs.load_pairs(pattern, found, text, args.pid)
    print('Tracing %d functions for "%s"... Hit Ctrl-C to end.' % (len(found), args.pattern), flush=True)
    label, per_unit = funcs.units(args)
    user = funcs.is_user(pattern)

    def section(key: tuple[int, int]) -> str:
        name = found[key[0]].name if key[0] < len(found) else str(key[0])
        return f"{name} [{key[1]}]" if user else name

    with b:
        dist, avg = b["dist"], b["avg"]

        def show() -> None:
            if keyed(args, pattern):
                dist.print_log2_hist(
                    label, "Function", section_print_fn=section, bucket_fn=lambda k: (int(k.fn), int(k.pid))
                )
            else:
                dist.print_log2_hist(label)
            total, calls = int(avg[0].value), int(avg[1].value)
            if calls > 0:
                total //= per_unit
                print("\navg = %d %s, total: %d %s, count: %d\n" % (total // calls, label, total, label, calls))

        funcs.print_histograms(args, show, (dist, avg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
