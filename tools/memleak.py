#!/usr/bin/env python3
"""memleak: trace outstanding memory allocations that were not freed, by allocating stack.

In a process (-p PID, or -c COMMAND that it starts), uprobes and uretprobes on the allocator's
functions (libc's malloc, calloc, realloc, mmap, posix_memalign, memalign, valloc, pvalloc,
aligned_alloc, free, munmap; -O names another library); in the kernel, the kmem tracepoints
(kmalloc, kfree, kmem_cache_alloc/free, mm_page_alloc/free) or, with --percpu, the percpu ones, as
bcc's memleak uses them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._tools import common
from rbcc.errors import BPFError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """
EXAMPLES:

rbcc tool memleak -p $(pidof allocs)
        Trace allocations and display a summary of "leaked" (outstanding)
        allocations every 5 seconds
rbcc tool memleak -p $(pidof allocs) -t
        Trace allocations and display each individual allocator function call
rbcc tool memleak -ap $(pidof allocs) 10
        Trace allocations and display allocated addresses, sizes, and stacks
        every 10 seconds for outstanding allocations
rbcc tool memleak -c "./allocs"
        Run the specified command and trace its allocations
rbcc tool memleak
        Trace allocations in kernel mode and display a summary of outstanding
        allocations every 5 seconds
rbcc tool memleak -o 60000
        Trace allocations in kernel mode and display a summary of outstanding
        allocations that are at least one minute (60 seconds) old
rbcc tool memleak -s 5
        Trace roughly every 5th allocation, to reduce overhead
"""

DESCRIPTION = """
Trace outstanding memory allocations that weren't freed.
Supports both user-mode allocations made with libc functions and kernel-mode
allocations made with kmalloc/kmem_cache_alloc/get_free_pages and corresponding
memory release functions.
"""

# What every mode shares: a size noted at the allocator's entry, per thread, turned into an
# outstanding allocation (address -> size, time, stack) when it returns an address; a free drops it.
# Per-stack totals are kept as they go, for --combined-only.
BPF_COMMON = r"""
#include <uapi/linux/ptrace.h>

struct alloc_info_t {
    u64 size;
    u64 timestamp_ns;
    int stack_id;
};

struct combined_alloc_info_t {
    u64 total_size;
    u64 number_of_allocs;
};

BPF_HASH(sizes, u64, u64);
BPF_HASH(allocs, u64, struct alloc_info_t, 1000000);
BPF_HASH(memptrs, u64, u64);
BPF_STACK_TRACE(stack_traces, 10240);
BPF_HASH(combined_allocs, u64, struct combined_alloc_info_t, 10240);

static __always_inline void stack_add(u64 stack_id, u64 size) {
    struct combined_alloc_info_t zero = {};
    struct combined_alloc_info_t *c = combined_allocs.lookup_or_try_init(&stack_id, &zero);
    if (c) {
        __sync_fetch_and_add(&c->total_size, size);
        __sync_fetch_and_add(&c->number_of_allocs, 1);
    }
}

static __always_inline void stack_del(u64 stack_id, u64 size) {
    struct combined_alloc_info_t *c = combined_allocs.lookup(&stack_id);
    if (!c)
        return;
    c->total_size = size >= c->total_size ? 0 : c->total_size - size;
    if (c->number_of_allocs > 0)
        c->number_of_allocs -= 1;
}

static __always_inline int alloc_enter(void *ctx, u64 size) {
    SIZE_FILTER
    if (SAMPLE_EVERY_N > 1 && bpf_ktime_get_ns() % SAMPLE_EVERY_N != 0)
        return 0;
    u64 tid = bpf_get_current_pid_tgid();
    sizes.update(&tid, &size);
    if (SHOULD_PRINT)
        bpf_trace_printk("alloc entered, size = %lu\n", size);
    return 0;
}

static __always_inline int alloc_exit(void *ctx, u64 address) {
    u64 tid = bpf_get_current_pid_tgid();
    u64 *size = sizes.lookup(&tid);
    if (!size)
        return 0;   // entry missed or filtered
    struct alloc_info_t info = {.size = *size};
    sizes.delete(&tid);
    if (address) {
        info.timestamp_ns = bpf_ktime_get_ns();
        info.stack_id = stack_traces.get_stackid(ctx, STACK_FLAGS);
        allocs.update(&address, &info);
        stack_add(info.stack_id, info.size);
    }
    if (SHOULD_PRINT)
        bpf_trace_printk("alloc exited, size = %lu, result = %lx\n", info.size, address);
    return 0;
}

static __always_inline int free_enter(void *ctx, u64 address) {
    struct alloc_info_t *info = allocs.lookup(&address);
    if (!info)
        return 0;
    u64 size = info->size;
    stack_del(info->stack_id, size);
    allocs.delete(&address);
    if (SHOULD_PRINT)
        bpf_trace_printk("free entered, address = %lx, size = %lu\n", address, size);
    return 0;
}
"""

# The allocator's arguments by position (PT_REGS_PARMn): each entry is (function, size expression).
USER_ALLOCATORS = {
    "malloc": "PT_REGS_PARM1(ctx)",
    "calloc": "PT_REGS_PARM1(ctx) * PT_REGS_PARM2(ctx)",
    "mmap": "PT_REGS_PARM2(ctx)",
    "aligned_alloc": "PT_REGS_PARM2(ctx)",
    "valloc": "PT_REGS_PARM1(ctx)",
    "memalign": "PT_REGS_PARM2(ctx)",
    "pvalloc": "PT_REGS_PARM1(ctx)",
}
# functions some libcs lack (bionic, older glibc): attached where present
OPTIONAL = {"valloc", "pvalloc", "aligned_alloc"}

BPF_USER_FIXED = r"""
int realloc_enter(struct pt_regs *ctx) {
    free_enter(ctx, PT_REGS_PARM1(ctx));
    return alloc_enter(ctx, PT_REGS_PARM2(ctx));
}

int realloc_exit(struct pt_regs *ctx) {
    return alloc_exit(ctx, PT_REGS_RC(ctx));
}

int free_enter_probe(struct pt_regs *ctx) {
    return free_enter(ctx, PT_REGS_PARM1(ctx));
}

int munmap_enter(struct pt_regs *ctx) {
    return free_enter(ctx, PT_REGS_PARM1(ctx));
}

// posix_memalign returns the address through its first argument: read it there on return
int posix_memalign_enter(struct pt_regs *ctx) {
    u64 tid = bpf_get_current_pid_tgid();
    u64 where = PT_REGS_PARM1(ctx);
    memptrs.update(&tid, &where);
    return alloc_enter(ctx, PT_REGS_PARM3(ctx));
}

int posix_memalign_exit(struct pt_regs *ctx) {
    u64 tid = bpf_get_current_pid_tgid();
    u64 *where = memptrs.lookup(&tid);
    if (!where)
        return 0;
    u64 address = 0;
    int failed = bpf_probe_read_user(&address, sizeof(address), (void *)*where);
    memptrs.delete(&tid);
    if (failed)
        return 0;
    return alloc_exit(ctx, address);
}
"""

BPF_KERNEL = r"""
TRACEPOINT_PROBE(kmem, kmalloc) {
    if (WORKAROUND_MISSING_FREE)
        free_enter(args, (u64)args->ptr);
    alloc_enter(args, args->bytes_alloc);
    return alloc_exit(args, (u64)args->ptr);
}

TRACEPOINT_PROBE(kmem, kfree) {
    return free_enter(args, (u64)args->ptr);
}

TRACEPOINT_PROBE(kmem, kmem_cache_alloc) {
    if (WORKAROUND_MISSING_FREE)
        free_enter(args, (u64)args->ptr);
    alloc_enter(args, args->bytes_alloc);
    return alloc_exit(args, (u64)args->ptr);
}

TRACEPOINT_PROBE(kmem, kmem_cache_free) {
    return free_enter(args, (u64)args->ptr);
}

TRACEPOINT_PROBE(kmem, mm_page_alloc) {
    alloc_enter(args, PAGE_BYTES << args->order);
    return alloc_exit(args, args->pfn);
}

TRACEPOINT_PROBE(kmem, mm_page_free) {
    return free_enter(args, args->pfn);
}
"""

# kernels before 6.1 trace the NUMA-node variants separately
BPF_KERNEL_NODE = r"""
TRACEPOINT_PROBE(kmem, kmalloc_node) {
    if (WORKAROUND_MISSING_FREE)
        free_enter(args, (u64)args->ptr);
    alloc_enter(args, args->bytes_alloc);
    return alloc_exit(args, (u64)args->ptr);
}

TRACEPOINT_PROBE(kmem, kmem_cache_alloc_node) {
    if (WORKAROUND_MISSING_FREE)
        free_enter(args, (u64)args->ptr);
    alloc_enter(args, args->bytes_alloc);
    return alloc_exit(args, (u64)args->ptr);
}
"""

# Raw tracepoints: the plain ones' `ptr` field is __percpu-qualified (`void __seg_gs *`), a type
# rbcc's tracepoint structs cannot declare. Arguments: alloc (call_site, reserved, is_atomic, size,
# align, base_addr, off, ptr, bytes_alloc, gfp), free (base_addr, off, ptr).
BPF_PERCPU = r"""
RAW_TRACEPOINT_PROBE(percpu_alloc_percpu) {
    alloc_enter(ctx, ctx->args[3]);
    return alloc_exit(ctx, ctx->args[7]);
}

RAW_TRACEPOINT_PROBE(percpu_free_percpu) {
    return free_enter(ctx, ctx->args[2]);
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("memleak", DESCRIPTION, EXAMPLES)
    p.add_argument("-p", "--pid", type=int, default=-1, help="the PID to trace; if not specified, trace kernel allocs")
    p.add_argument("-t", "--trace", action="store_true", help="print trace messages for each alloc/free call")
    p.add_argument(
        "interval",
        nargs="?",
        default=5,
        type=common.positive_int,
        help="interval in seconds to print outstanding allocations",
    )
    p.add_argument(
        "count", nargs="?", type=common.positive_int, help="number of times to print the report before exiting"
    )
    p.add_argument(
        "-a", "--show-allocs", action="store_true", help="show allocation addresses and sizes as well as call stacks"
    )
    p.add_argument(
        "-o", "--older", default=500, type=int, help="prune allocations younger than this age in milliseconds"
    )
    p.add_argument("-c", "--command", help="execute and trace the specified command")
    p.add_argument("--combined-only", action="store_true", help="show combined allocation statistics only")
    p.add_argument(
        "--wa-missing-free", action="store_true", help="Workaround to alleviate misjudgments when free is missing"
    )
    p.add_argument(
        "-s",
        "--sample-rate",
        default=1,
        type=common.positive_int,
        help="sample every N-th allocation to decrease the overhead",
    )
    p.add_argument(
        "-T",
        "--top",
        type=common.positive_int,
        default=10,
        help="display only this many top allocating stacks (by size)",
    )
    p.add_argument("-z", "--min-size", type=int, help="capture only allocations larger than this size")
    p.add_argument("-Z", "--max-size", type=int, help="capture only allocations smaller than this size")
    p.add_argument("-O", "--obj", type=str, default="c", help="attach to allocator functions in the specified object")
    p.add_argument("--percpu", action="store_true", help="trace percpu allocations")
    return p


def kernel_mode(args: argparse.Namespace) -> bool:
    return args.pid == -1 and args.command is None


def bpf_text(args: argparse.Namespace, node_tracepoints: bool = False) -> str:
    """The C for these options; ``node_tracepoints``: the kernel has kmalloc_node (before 6.1)."""
    text = BPF_COMMON
    if not kernel_mode(args):
        for fn, size in USER_ALLOCATORS.items():
            text += (
                f"\nint {fn}_enter(struct pt_regs *ctx) {{\n    return alloc_enter(ctx, {size});\n}}\n"
                f"\nint {fn}_exit(struct pt_regs *ctx) {{\n    return alloc_exit(ctx, PT_REGS_RC(ctx));\n}}\n"
            )
        text += BPF_USER_FIXED
    elif args.percpu:
        text += BPF_PERCPU
    else:
        text += BPF_KERNEL + (BPF_KERNEL_NODE if node_tracepoints else "")
    limits = []
    if args.min_size is not None:
        limits.append(f"size < {args.min_size}")
    if args.max_size is not None:
        limits.append(f"size > {args.max_size}")
    return (
        text.replace("SIZE_FILTER", f"if ({' || '.join(limits)})\n        return 0;" if limits else "")
        .replace("WORKAROUND_MISSING_FREE", "1" if args.wa_missing_free else "0")
        .replace("SHOULD_PRINT", "1" if args.trace else "0")
        .replace("SAMPLE_EVERY_N", str(args.sample_rate))
        .replace("PAGE_BYTES", str(os.sysconf("SC_PAGE_SIZE")))
        .replace("STACK_FLAGS", "0" if kernel_mode(args) else "BPF_F_USER_STACK")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_size is not None and args.max_size is not None and args.min_size > args.max_size:
        parser.error("min_size (-z) can't be greater than max_size (-Z)")
    return common.guard("memleak", lambda: run(args))


def attach_user(b: BPF, obj: str, pid: int) -> None:
    for fn in [*USER_ALLOCATORS, "realloc", "posix_memalign"]:
        try:
            b.attach_uprobe(name=obj, sym=fn, fn_name=f"{fn}_enter", pid=pid)
            b.attach_uretprobe(name=obj, sym=fn, fn_name=f"{fn}_exit", pid=pid)
        except BPFError:
            if fn not in OPTIONAL:
                raise
    b.attach_uprobe(name=obj, sym="free", fn_name="free_enter_probe", pid=pid)
    b.attach_uprobe(name=obj, sym="munmap", fn_name="munmap_enter", pid=pid)


def _stack(b: BPF, stack_id: int, pid: int) -> list[bytes]:
    return [b.sym(addr, pid, show_module=True, show_offset=True) for addr in b["stack_traces"].walk(stack_id)]


def print_outstanding(b: BPF, args: argparse.Namespace, pid: int) -> None:
    print("[%s] Top %d stacks with outstanding allocations:" % (common.strftime_now(), args.top))
    youngest = BPF.monotonic_time() - args.older * 1e6
    by_stack: dict[int, list[Any]] = {}  # stack id -> [total size, count, frames]
    for address, info in sorted(b["allocs"].items(), key=lambda kv: kv[1].size):
        if info.timestamp_ns > youngest or info.stack_id < 0:
            continue
        entry = by_stack.get(info.stack_id)
        if entry is None:
            frames = [
                b"0x%016x\t" % addr + b.sym(addr, pid, show_module=True, show_offset=True)
                for addr in b["stack_traces"].walk(info.stack_id)
            ]
            by_stack[info.stack_id] = [info.size, 1, frames]
        else:
            entry[0] += info.size
            entry[1] += 1
        if args.show_allocs:
            print("\taddr = %x size = %s" % (address.value, info.size))
    for size, count, frames in sorted(by_stack.values(), key=lambda e: e[0])[-args.top :]:
        print(
            "\t%d bytes in %d allocations from stack\n\t\t%s"
            % (size, count, b"\n\t\t".join(frames).decode("ascii", "replace"))
        )


def print_outstanding_combined(b: BPF, args: argparse.Namespace, pid: int) -> None:
    entries = []
    for stack_id, info in sorted(b["combined_allocs"].items(), key=lambda kv: -kv[1].total_size)[: args.top]:
        try:
            trace = "\n\t\t".join(f.decode("ascii", "replace") for f in _stack(b, stack_id.value, pid))
        except KeyError:
            trace = "stack information lost"
        entries.append(
            "\t%d bytes in %d allocations from stack\n\t\t%s" % (info.total_size, info.number_of_allocs, trace)
        )
    print("[%s] Top %d stacks with outstanding allocations:" % (common.strftime_now(), args.top))
    print("\n".join(reversed(entries)))


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args, BPF.tracepoint_exists("kmem", "kmalloc_node")))
        return 0
    pid = args.pid
    child = None
    if args.command is not None:
        print("Executing '%s' and tracing the resulting process." % args.command, flush=True)
        child = subprocess.Popen(shlex.split(args.command))
        pid = child.pid
    try:
        return trace(args, pid)
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()


def trace(args: argparse.Namespace, pid: int) -> int:
    b = BPF(text=bpf_text(args, BPF.tracepoint_exists("kmem", "kmalloc_node")))
    with b:
        if kernel_mode(args):
            print("Attaching to kernel allocators, Ctrl+C to quit.", flush=True)
        else:
            attach_user(b, args.obj, pid)
            print("Attaching to pid %d, Ctrl+C to quit." % pid, flush=True)
        if args.trace:
            while True:
                print(b.trace_fields(), flush=True)
        # Ctrl-C ends it without a last report, as bcc's memleak
        reports = 0
        while args.count is None or reports < args.count:
            time.sleep(args.interval)
            if args.combined_only:
                print_outstanding_combined(b, args, pid)
            else:
                print_outstanding(b, args, pid)
            sys.stdout.flush()
            reports += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
