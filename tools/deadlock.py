#!/usr/bin/env python3
"""deadlock: find potential deadlocks (lock order inversions) in a running process.

Uprobes on the process's mutex lock and unlock functions (pthread_mutex_lock and
pthread_mutex_unlock of the libc it maps, or of --binary; --lock-symbols and --unlock-symbols name
others) keep, per thread, the mutexes it holds. Taking mutex B while holding A adds the edge A => B
to a graph of lock order, with the stacks of both acquisitions. Each second the graph is searched
for a cycle: two threads that took the same mutexes in opposite orders could deadlock, even if this
run did not. On the first cycle the tool prints it, with the stacks where each mutex was taken and
where each thread was created (pthread_create, matched to its thread at sched:sched_process_fork), and
exits with status 1.

Only inversions that happen while the tool traces are seen. Recursive and shared (read-write) mutexes
are not told apart: a recursive mutex taken twice shows no cycle (one node), a reader lock counts as
exclusive. A thread holding more than MAX_HELD mutexes at once has the rest ignored.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from rbcc import BPF
from rbcc._tools import common
from rbcc.errors import AttachError

__all__ = ["Edge", "bpf_text", "build_parser", "find_cycle", "main"]

EXAMPLES = """examples:
    rbcc tool deadlock 181                 # find lock order inversions in process 181
    rbcc tool deadlock 181 --binary /lib/x86_64-linux-gnu/libc.so.6
                                           # the mutex functions of this file
    rbcc tool deadlock 181 --verbose       # print the graph's size each second
    rbcc tool deadlock 181 --lock-symbols my_lock,my_lock2 --unlock-symbols my_unlock
                                           # trace other lock functions (first argument: the lock)
    rbcc tool deadlock 181 --dump-graph graph.json
                                           # write the lock order graph as JSON each second
"""

MAX_HELD = 16  # mutexes one thread can hold at once and still be tracked

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>

struct held_t {
    u64 mutex[MAX_HELD];
    u64 caller[MAX_HELD];
    int stack_id[MAX_HELD];
    u32 n;
};

struct edge_key_t {
    u64 first;
    u64 second;
};

struct edge_t {
    u64 first_caller;
    u64 second_caller;
    u32 tid;
    int first_stack_id;
    int second_stack_id;
    char comm[TASK_COMM_LEN];
};

struct parent_t {
    u64 caller;
    u32 tid;
    int stack_id;
    char comm[TASK_COMM_LEN];
};

BPF_HASH(held, u32, struct held_t, MAX_THREADS);
BPF_HASH(edges, struct edge_key_t, struct edge_t, MAX_EDGES);
BPF_HASH(thread_parent, u32, struct parent_t, MAX_THREADS);
// pthread_create's stack, by the creating thread, until the kernel names the new thread at its fork
BPF_HASH(creating, u32, struct parent_t, MAX_THREADS);
BPF_STACK_TRACE(stacks, MAX_THREADS);
// a per-CPU scratch: struct held_t is too big for the BPF stack beside the rest
BPF_PERCPU_ARRAY(empty_held, struct held_t, 1);

// At a function's first instruction its caller's frame is not yet on the frame-pointer chain, so the
// stack walk skips the caller; its return address is still at the top of the stack.
static __always_inline u64 return_address(struct pt_regs *ctx) {
    u64 ret = 0;
    bpf_probe_read_user(&ret, sizeof(ret), (void *)PT_REGS_SP(ctx));
    return ret;
}

int on_lock(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != TARGET_PID)
        return 0;
    u32 tid = (u32)id;
    u64 mutex = PT_REGS_PARM1(ctx);
    int stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    u64 caller = return_address(ctx);
    int zero = 0;
    struct held_t *blank = empty_held.lookup(&zero);
    if (!blank)
        return 0;
    struct held_t *h = held.lookup_or_try_init(&tid, blank);
    if (!h)
        return 0;
    struct edge_t edge = {.tid = tid, .second_stack_id = stack_id, .second_caller = caller};
    bpf_get_current_comm(&edge.comm, sizeof(edge.comm));
    for (int i = 0; i < MAX_HELD; i++) {
        if (i >= h->n)
            break;
        if (h->mutex[i] == mutex)
            continue;
        struct edge_key_t key = {.first = h->mutex[i], .second = mutex};
        edge.first_stack_id = h->stack_id[i];
        edge.first_caller = h->caller[i];
        // the first thread seen taking the pair in this order keeps its stacks
        edges.insert(&key, &edge);
    }
    u32 n = h->n;
    if (n < MAX_HELD) {
        h->mutex[n] = mutex;
        h->stack_id[n] = stack_id;
        h->caller[n] = caller;
        h->n = n + 1;
    }
    return 0;
}

int on_unlock(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != TARGET_PID)
        return 0;
    u32 tid = (u32)id;
    u64 mutex = PT_REGS_PARM1(ctx);
    struct held_t *h = held.lookup(&tid);
    if (!h)
        return 0;
    // the most recent hold goes first: locks are usually released in reverse order
    for (int i = MAX_HELD - 1; i >= 0; i--) {
        if (i >= h->n || h->mutex[i] != mutex)
            continue;
        u32 last = h->n - 1;
        if (last < MAX_HELD) {
            h->mutex[i] = h->mutex[last];
            h->stack_id[i] = h->stack_id[last];
            h->caller[i] = h->caller[last];
            h->n = last;
        }
        break;
    }
    return 0;
}

int on_create(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != TARGET_PID)
        return 0;
    u32 tid = (u32)id;
    struct parent_t parent = {.tid = tid, .caller = return_address(ctx)};
    parent.stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    bpf_get_current_comm(&parent.comm, sizeof(parent.comm));
    creating.update(&tid, &parent);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork) {
    u64 id = bpf_get_current_pid_tgid();
    if (id >> 32 != TARGET_PID)
        return 0;
    u32 tid = (u32)id;
    u32 child = args->child_pid;
    struct parent_t *parent = creating.lookup(&tid);
    if (parent) {
        thread_parent.update(&child, parent);
        creating.delete(&tid);
    }
    return 0;
}
"""


class Edge(NamedTuple):
    """Mutex ``second`` taken while holding ``first``, by thread ``tid``."""

    first: int
    second: int
    tid: int
    comm: str
    first_stack_id: int
    second_stack_id: int
    first_caller: int
    second_caller: int


def _symbols(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one symbol")
    return names


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "deadlock", "Detect potential deadlocks (lock inversions) in a running binary.\nMust be run as root.", EXAMPLES
    )
    p.add_argument("pid", type=common.positive_int, help="Pid to trace")
    p.add_argument(
        "--binary",
        default="",
        help="the file whose lock functions to trace (default: the process's own executable if it has them, "
        "else the libc it maps)",
    )
    p.add_argument("--dump-graph", default="", help="write the mutex graph to this file (JSON) each second")
    p.add_argument("--verbose", action="store_true", help="print the number of mutexes and edges each second")
    p.add_argument(
        "--lock-symbols", type=_symbols, default=["pthread_mutex_lock"], help="comma-separated lock functions"
    )
    p.add_argument(
        "--unlock-symbols", type=_symbols, default=["pthread_mutex_unlock"], help="comma-separated unlock functions"
    )
    p.add_argument("-t", "--threads", type=common.positive_int, default=65536, help="maximum threads to trace")
    p.add_argument("-e", "--edges", type=common.positive_int, default=65536, help="maximum edges to record")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("TARGET_PID", str(int(args.pid)))
        .replace("MAX_HELD", str(MAX_HELD))
        .replace("MAX_THREADS", str(int(args.threads)))
        .replace("MAX_EDGES", str(int(args.edges)))
    )


def find_cycle(edges: Iterable[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """A cycle of the directed graph ``edges`` as the list of its edges in order, or None."""
    succ: dict[int, list[int]] = {}
    for a, b in sorted(set(edges)):
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    state: dict[int, int] = {}  # 1: on the current path, 2: explored
    for root in succ:
        if root in state:
            continue
        path = [root]
        todo = [iter(succ[root])]
        state[root] = 1
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(nxt) == 1:
                loop = path[path.index(nxt) :] + [nxt]
                return list(zip(loop, loop[1:]))
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(iter(succ[nxt]))
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("deadlock", lambda: run(args))


def _targets(args: argparse.Namespace) -> list[str]:
    """Where to look for the lock functions: --binary alone, else the executable then libc."""
    if args.binary:
        return [args.binary]
    return [os.readlink(f"/proc/{args.pid}/exe"), "c"]


def _attach(b: BPF, args: argparse.Namespace) -> None:
    probes = ((args.lock_symbols, "on_lock"), (args.unlock_symbols, "on_unlock"), (["pthread_create"], "on_create"))
    for symbols, fn in probes:
        for sym in symbols:
            errors = []
            for target in _targets(args):
                try:
                    b.attach_uprobe(name=target, sym=sym, fn_name=fn, pid=args.pid)
                    break
                except AttachError as e:
                    errors.append(str(e))
            else:
                raise AttachError(f"cannot attach to {sym}: " + "; ".join(errors) + " (is --binary missing?)")


def _edges(b: BPF) -> list[Edge]:
    return [
        Edge(
            k.first,
            k.second,
            v.tid,
            v.comm.decode("utf-8", "replace"),
            v.first_stack_id,
            v.second_stack_id,
            v.first_caller,
            v.second_caller,
        )
        for k, v in b["edges"].items()
    ]


def dump_graph(path: str, edges: Sequence[Edge]) -> None:
    """The graph as node-link JSON (nodes: mutex addresses; links: the edges with their thread)."""
    nodes = sorted({e.first for e in edges} | {e.second for e in edges})
    links = [{"source": e.first, "target": e.second, "thread_pid": e.tid, "thread_comm": e.comm} for e in edges]
    with open(path, "w") as f:
        json.dump({"directed": True, "nodes": [{"id": n} for n in nodes], "links": links}, f, indent=2)


def report(
    b: BPF, pid: int, cycle: Sequence[tuple[int, int]], edges: Sequence[Edge], print_stack: Callable[[int, int], None]
) -> None:
    by_pair = {(e.first, e.second): e for e in edges}
    names = {}
    for i, (m, _) in enumerate(cycle):
        sym = b.sym(m, pid).decode("utf-8", "replace")
        label = f"{sym} " if sym and not sym.startswith("[unknown]") else ""
        names[m] = "Mutex M%d (%s0x%016x)" % (i, label, m)
    order = [m for m, _ in cycle] + [cycle[0][0]]
    print("----------------\nPotential Deadlock Detected!\n")
    print("Cycle in lock order graph: %s\n" % " => ".join(names[m] for m in order))
    threads: dict[int, None] = {}
    for m, n in cycle:
        e = by_pair[(m, n)]
        threads[e.tid] = None
        print("%s acquired here while holding %s in Thread %d (%s):" % (names[n], names[m], e.tid, e.comm))
        print_stack(e.second_stack_id, e.second_caller)
        print("")
        print("%s previously acquired by the same Thread %d (%s) here:" % (names[m], e.tid, e.comm))
        print_stack(e.first_stack_id, e.first_caller)
        print("")
    parents = b["thread_parent"]
    for tid in threads:
        parent = parents.get(parents.Key(tid))
        if parent is None:
            print("Could not find stack trace where Thread %d was created" % tid)
        else:
            print(
                "Thread %d created by Thread %d (%s) here: " % (tid, parent.tid, parent.comm.decode("utf-8", "replace"))
            )
            print_stack(parent.stack_id, parent.caller)
        print("")


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        _attach(b, args)
        stacks = b["stacks"]

        def print_stack(stack_id: int, caller: int) -> None:
            if stack_id < 0:
                print("[stack not available: %d]" % stack_id)
                return
            frames = list(stacks.walk(stack_id))
            # the probed function's caller, which the frame-pointer walk skips at its entry
            frames[1:1] = [caller] if caller else []
            for addr in frames:
                print("@ %016x %s" % (addr, b.sym(addr, args.pid).decode("utf-8", "replace")))

        print("Tracing... Hit Ctrl-C to end.", flush=True)
        for _ in common.intervals(1, None):
            edges = _edges(b)
            if args.verbose:
                mutexes = {e.first for e in edges} | {e.second for e in edges}
                print("Mutexes: %d, Edges: %d" % (len(mutexes), len(edges)), flush=True)
            if args.dump_graph:
                dump_graph(args.dump_graph, edges)
            cycle = find_cycle((e.first, e.second) for e in edges)
            if cycle:
                report(b, args.pid, cycle, edges, print_stack)
                sys.stdout.flush()
                return 1
            if not os.path.exists(f"/proc/{args.pid}"):
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
