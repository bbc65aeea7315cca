#!/usr/bin/env python3
"""dbslower: trace MySQL and PostgreSQL queries slower than a threshold.

Queries are timed between the servers' USDT probes query__start and query__done (servers built with
DTrace support), in the processes given with -p, else in every running mysqld or postgres. With
-x PATH and no -p: for MySQL, uprobes on the server binary's dispatch_command (servers without USDT
probes, as bcc); for PostgreSQL, the USDT probes of that binary in every process running it, so
backends forked for new connections are traced too. The threshold is 1 ms by default; 0 traces all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, dbprobes

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool dbslower postgres            # trace PostgreSQL queries slower than 1ms
    rbcc tool dbslower postgres -p 188 322 # trace specific PostgreSQL processes
    rbcc tool dbslower mysql -p 480 -m 30  # trace MySQL queries slower than 30ms
    rbcc tool dbslower mysql -p 480 -v     # trace MySQL queries & print the BPF program
    rbcc tool dbslower mysql -x $(which mysqld)  # trace MySQL queries with uprobes
    rbcc tool dbslower postgres -x /usr/lib/postgresql/15/bin/postgres -m 0  # every backend, every query
"""

BPF_TEXT = r"""
#define QUERY_MAX 256

struct start_t {
    u64 ts;
    char query[QUERY_MAX];  // copied at the start: the server may reuse its buffer before the end
};

struct data_t {
    u32 pid;
    u64 timestamp;
    u64 duration;
    char query[QUERY_MAX];
};

BPF_HASH(temp, u64, struct start_t);
BPF_PERF_OUTPUT(events);

int query_start(struct pt_regs *ctx)
{
    u64 query = 0;
    READ_QUERY
    struct start_t start = {};
    bpf_probe_read_user_str(&start.query, sizeof(start.query), (void *)query);
    u64 id = bpf_get_current_pid_tgid();
    start.ts = bpf_ktime_get_ns();
    temp.update(&id, &start);
    return 0;
}

int query_end(struct pt_regs *ctx)
{
    u64 id = bpf_get_current_pid_tgid();
    struct start_t *start = temp.lookup(&id);
    if (start == 0)
        return 0;  // its start came before tracing began
    u64 delta = bpf_ktime_get_ns() - start->ts;
    if (delta >= THRESHOLD_NS) {
        struct data_t data = {.pid = id >> 32, .timestamp = start->ts, .duration = delta};
        __builtin_memcpy(data.query, start->query, sizeof(data.query));
        events.perf_submit(ctx, &data, sizeof(data));
    }
    temp.delete(&id);
    return 0;
}
"""

READ_QUERY = {
    "USDT": "bpf_usdt_readarg(1, ctx, &query);",
    # dispatch_command(command, thd, packet, length)
    "MYSQL56": f"""if (PT_REGS_PARM1(ctx) != {dbprobes.COM_QUERY})
        return 0;
    query = PT_REGS_PARM3(ctx);""",
    # dispatch_command(thd, com_data, command): com_data->com_query.query first
    "MYSQL57": f"""if (PT_REGS_PARM3(ctx) != {dbprobes.COM_QUERY})
        return 0;
    bpf_probe_read_user(&query, sizeof(query), (void *)PT_REGS_PARM2(ctx));""",
}


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("dbslower", "Trace MySQL and PostgreSQL queries slower than a threshold", EXAMPLES)
    dbprobes.add_db_options(
        p,
        1,
        "path to binary: MySQL's, for uprobes on dispatch_command; PostgreSQL's, for its USDT probes in "
        "every process running it",
    )
    return p


def mode(args: argparse.Namespace) -> str:
    """How queries are seen: USDT probes, or bcc's uprobes on MySQL's dispatch_command (MYSQL56/57)."""
    if args.path and not args.pids and args.db == "mysql":
        return dbprobes.dispatch_command(args.path)[1]
    return "USDT"


def bpf_text(args: argparse.Namespace, how: str = "USDT") -> str:
    """The C for these options, queries seen ``how`` (pure)."""
    return BPF_TEXT.replace("READ_QUERY", READ_QUERY[how]).replace("THRESHOLD_NS", str(args.threshold * 1000000))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("dbslower", lambda: run(args))


def load(args: argparse.Namespace, how: str, text: str) -> tuple[BPF, str]:
    """The program attached, and what it traces (for the header)."""
    if how != "USDT":
        symbol = dbprobes.dispatch_command(args.path)[0]
        b = BPF(text=text)
        try:
            b.attach_uprobe(name=args.path, sym=symbol, fn_name="query_start")
            b.attach_uretprobe(name=args.path, sym=symbol, fn_name="query_end")
        except BaseException:
            b.cleanup()
            raise
        return b, "application %s" % args.path
    if args.path and not args.pids:
        contexts = dbprobes.usdt_contexts([], args.path, "query_start", "query_end")
        return BPF(text=text, usdt_contexts=contexts), "application %s" % args.path
    pids = dbprobes.server_pids(args)
    contexts = dbprobes.usdt_contexts(pids, None, "query_start", "query_end")
    return BPF(text=text, usdt_contexts=contexts), "pids %s" % ", ".join(map(str, pids))


def run(args: argparse.Namespace) -> int:
    how = mode(args)
    text = bpf_text(args, how)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    b, what = load(args, how, text)
    start = BPF.monotonic_time()
    dbprobes.print_slow_queries(
        b,
        "Tracing database queries for %s slower than %d ms..." % (what, args.threshold),
        lambda event: (int(event.timestamp) - start, event.pid, int(event.duration), event.query),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
