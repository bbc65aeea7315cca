"""What the database tools share (dbslower, dbstat, mysqld_qslower): the servers' processes, their query
probes, and where those go.

MySQL and PostgreSQL built with DTrace support fire USDT probes around each query:
``mysql:query__start(query, connection_id, db, user, host)`` / ``mysql:query__done(status)`` and
``postgresql:query__start(query)`` / ``postgresql:query__done(query)``; the first argument of
query__start is the query's text in both. A query is timed from one to the other in the same thread.

Probes go into processes by pid, as bcc's tools put them (a server found by name when no pid is
given); or, with a server binary's path, into every process running it: PostgreSQL forks a backend per
connection, and only the path reaches backends forked after the tool starts. MySQL servers without
USDT probes are traced with bcc's uprobes on ``dispatch_command`` instead (dbslower -x).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

from .. import BPF, USDT
from ..errors import AttachError
from . import common

# the server's process name, as pidof finds it
SERVERS = {"mysql": "mysqld", "postgres": "postgres"}

START, DONE = "query__start", "query__done"

# MySQL's dispatch_command: COM_QUERY is command 3; 5.6 passes (command, thd, packet, length), 5.7 and
# later (thd, const COM_DATA *, command) with the query's pointer first in COM_DATA
DISPATCH_REGEX = r"\w+dispatch_command\w+"
COM_QUERY = 3


def pids_of(name: str) -> list[int]:
    """The processes whose name (comm) is ``name``, as ``pidof`` lists them."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().rstrip("\n") == name:
                    found.append(int(entry))
        except OSError:
            continue  # gone meanwhile
    return sorted(found)


def add_db_options(p: argparse.ArgumentParser, threshold: int, path_help: str) -> None:
    """bcc's dbslower/dbstat options: -v, the engine, -p PID..., -x PATH, -m THRESHOLD."""
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program")
    p.add_argument("db", choices=sorted(SERVERS), help="the database engine to use")
    p.add_argument("-p", "--pid", type=int, nargs="*", dest="pids", metavar="PID", help="the pid(s) to trace")
    p.add_argument("-x", "--exe", type=str, dest="path", metavar="PATH", help=path_help)
    p.add_argument(
        "-m", "--threshold", type=int, default=threshold, help="trace queries slower than this threshold (ms)"
    )


def server_pids(args: argparse.Namespace) -> list[int]:
    """-p's pids, else every running server of the engine (AttachError when there is none)."""
    if args.pids:
        return list(args.pids)
    found = pids_of(SERVERS[args.db])
    if not found:
        raise AttachError(f"no {SERVERS[args.db]} process is running: name the server with -p PID or -x PATH")
    return found


def usdt_contexts(pids: Sequence[int], path: str | None, start_fn: str, done_fn: str) -> list[USDT]:
    """USDT contexts with query__start and query__done enabled for ``start_fn`` and ``done_fn``: one per
    pid, or one for every process of the binary at ``path``."""
    contexts = [USDT(path=path)] if path else [USDT(pid=pid) for pid in pids]
    for usdt in contexts:
        usdt.enable_probe(START, start_fn)
        usdt.enable_probe(DONE, done_fn)
    return contexts


def dispatch_command(path: str) -> tuple[str, str]:
    """MySQL's dispatch_command in the server binary at ``path``: its symbol and bcc's mode for its
    arguments, MYSQL57 (it takes a COM_DATA) or MYSQL56."""
    symbols = BPF.get_user_functions_and_addresses(path, DISPATCH_REGEX)
    if not symbols:
        raise AttachError(f"Can't find function 'dispatch_command' in {path}")
    name = symbols[0][0].decode()
    return name, "MYSQL57" if "COM_DATA" in name else "MYSQL56"


def print_slow_queries(b: BPF, title: str, row: Callable[[Any], tuple[float, int, int, bytes]]) -> None:
    """dbslower's and mysqld_qslower's output, the same columns in bcc's two tools: ``title``, the
    header, then a line for each event of the perf buffer ``events`` until Ctrl-C. ``row`` reads an
    event as (nanoseconds since the tool's time zero, pid, duration in nanoseconds, query text): the
    tools name the fields differently and take their time zero differently."""

    def print_event(cpu: int, data: Any, size: int) -> None:
        since, pid, duration, query = row(b["events"].event(data))
        print(
            "%-14.6f %-7d %8.3f %s" % (since / 1e9, pid, duration / 1e6, query.decode("utf-8", "replace")), flush=True
        )

    with b:
        print(title)
        print("%-14s %-7s %8s %s" % ("TIME(s)", "PID", "MS", "QUERY"), flush=True)
        b["events"].open_perf_buffer(print_event, page_cnt=64)
        common.poll_events(b)
