#!/usr/bin/env python3
"""mysqld_qslower: MySQL server queries slower than a threshold.

Each query of the mysqld process PID is timed between its USDT probes mysql:query__start and
mysql:query__done (a server built with -DENABLE_DTRACE=1); those taking at least min_ms milliseconds
(default 1; 0 shows all) are printed with the start of their text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import common, dbprobes

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool mysqld_qslower $(pidof mysqld)      # MySQL queries slower than 1 ms
    rbcc tool mysqld_qslower $(pidof mysqld) 10   # slower than 10 ms
    rbcc tool mysqld_qslower $(pidof mysqld) 0    # every query
"""

QUERY_MAX = 128

BPF_TEXT = r"""
#define QUERY_MAX QUERY_LEN

struct start_t {
    u64 ts;
    u64 query;  // the text's address: it is still the query's at query__done
};

struct data_t {
    u32 pid;
    u64 ts;
    u64 delta;
    char query[QUERY_MAX];
};

BPF_HASH(start_tmp, u32, struct start_t);
BPF_PERF_OUTPUT(events);

int do_start(struct pt_regs *ctx)
{
    u32 tid = bpf_get_current_pid_tgid();
    struct start_t start = {.ts = bpf_ktime_get_ns()};
    bpf_usdt_readarg(1, ctx, &start.query);
    start_tmp.update(&tid, &start);
    return 0;
}

int do_done(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    struct start_t *sp = start_tmp.lookup(&tid);
    if (sp == 0)
        return 0;  // its start came before tracing began
    u64 delta = bpf_ktime_get_ns() - sp->ts;
    if (delta >= MIN_NS) {
        struct data_t data = {.pid = id >> 32, .ts = sp->ts, .delta = delta};
        bpf_probe_read_user_str(&data.query, sizeof(data.query), (void *)sp->query);
        events.perf_submit(ctx, &data, sizeof(data));
    }
    start_tmp.delete(&tid);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("mysqld_qslower", "MySQL server queries slower than a threshold", EXAMPLES)
    p.add_argument("pid", type=int, help="the mysqld process to trace")
    p.add_argument("min_ms", nargs="?", default="1", help="minimum query duration to show, in ms (default 1)")
    return p


def min_ns(args: argparse.Namespace) -> int:
    try:
        return int(float(args.min_ms) * 1000000)
    except ValueError:
        raise SystemExit(f"mysqld_qslower: min_ms must be a number, not {args.min_ms!r}") from None


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure)."""
    return BPF_TEXT.replace("QUERY_LEN", str(QUERY_MAX)).replace("MIN_NS", str(min_ns(args)))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("mysqld_qslower", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    text = bpf_text(args)
    if args.ebpf:
        print(text)
        return 0
    contexts = dbprobes.usdt_contexts([args.pid], None, "do_start", "do_done")
    b = BPF(text=text, usdt_contexts=contexts)
    first = 0

    def row(event: Any) -> tuple[float, int, int, bytes]:
        nonlocal first
        first = first or int(event.ts)
        return int(event.ts) - first, event.pid, int(event.delta), event.query

    dbprobes.print_slow_queries(
        b, "Tracing MySQL server queries for PID %d slower than %s ms..." % (args.pid, args.min_ms), row
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
