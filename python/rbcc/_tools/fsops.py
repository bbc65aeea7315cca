"""What the file system latency tools share (fsdist, fsslower, and bcc's per-file-system names:
ext4dist, ext4slower, btrfsdist, btrfsslower, nfsdist, nfsslower, xfsdist, xfsslower): which kernel
function is each file system's read, write, open, fsync and getattr, loading ext4dist's and ext4slower's
programs (which do not depend on the file system) with kprobes on those functions, and bcc's options and
output for them.

Reads and writes of a file system have no tracepoints, only its functions, so these tools need kprobes
(libbpf-tools uses fentry where it can, which this project's kernel refuses as well).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from rbcc import BPF
from rbcc.utils import printb

from . import block, common

OPS = ("read", "write", "open", "fsync", "getattr")

# libbpf-tools' functions (fsdist.c / fsslower.c); getattr where the file system has its own
FS_FUNCS: dict[str, dict[str, str]] = {
    "btrfs": {
        "read": "btrfs_file_read_iter",
        "write": "btrfs_file_write_iter",
        "open": "btrfs_file_open",
        "fsync": "btrfs_sync_file",
    },
    "ext4": {
        "read": "ext4_file_read_iter",
        "write": "ext4_file_write_iter",
        "open": "ext4_file_open",
        "fsync": "ext4_sync_file",
        "getattr": "ext4_file_getattr",
    },
    "nfs": {
        "read": "nfs_file_read",
        "write": "nfs_file_write",
        "open": "nfs_file_open",
        "fsync": "nfs_file_fsync",
        "getattr": "nfs_getattr",
    },
    "xfs": {
        "read": "xfs_file_read_iter",
        "write": "xfs_file_write_iter",
        "open": "xfs_file_open",
        "fsync": "xfs_file_fsync",
    },
}
NAMES = {"btrfs": "btrfs", "ext4": "ext4", "nfs": "NFS", "xfs": "XFS"}

# getattr for the dist tools, beside ext4dist's read/write/open/fsync (same entry, same return)
GETATTR_C = r"""
int trace_getattr_entry(struct pt_regs *ctx) { return trace_entry(ctx); }
int trace_getattr_return(struct pt_regs *ctx) { char op[16] = "getattr"; return trace_return(ctx, op); }
"""

DIST_ALTERNATIVE = "`rbcc tool biolatency` shows the disk's latency, `rbcc tool vfsstat` the file operations"
SLOWER_ALTERNATIVE = "`rbcc tool fileslower` times reads and writes at the system calls"
# ext4dist's and ext4slower's words for the missing kprobes, as bcc's names for them have said
EXT4_WHY = "ext4 reads and writes have no tracepoints"


def add_type(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--type", choices=sorted(FS_FUNCS), required=True, help="which file system to trace")


def dist_text(args: argparse.Namespace, fs: str, getattr: bool = True) -> str:
    """ext4dist's C, plus getattr where ``fs`` has one (and ``getattr``)."""
    from rbcc.tools import ext4dist

    text = ext4dist.bpf_text(args)
    return text + GETATTR_C if getattr and "getattr" in FS_FUNCS[fs] else text


def slower_text(pid: int | None, min_ms: int) -> str:
    """ext4slower's C for this pid filter and threshold."""
    from rbcc.tools import ext4slower

    return ext4slower.bpf_text(argparse.Namespace(pid=pid, min_ms=min_ms))


def load(
    args: argparse.Namespace, tool: str, fs: str, text: str, rw_entry: str, alternative: str, why: str = ""
) -> BPF | None:
    """The program loaded, ``rw_entry`` on ``fs``'s read and write, ``trace_<op>_entry`` on the others,
    ``trace_<op>_return`` on each (those the C has); under --ebpf the C printed and None; without
    kprobes, KernelFeatureError naming ``why`` (by default, that ``fs``'s operations have no tracepoints)
    and ``alternative``."""
    funcs = {op: fn for op, fn in FS_FUNCS[fs].items() if f"trace_{op}_return" in text}
    return block.load_with_kprobes(
        args,
        tool,
        text,
        lambda b: _attach_ops(b, funcs, rw_entry),
        ", ".join(funcs.values()),
        why or f"{fs} file operations have no tracepoints",
        alternative,
    )


def _attach_ops(b: BPF, funcs: dict[str, str], rw_entry: str) -> None:
    """``rw_entry`` (reads, writes) or ``trace_<op>_entry`` (the others), and ``trace_<op>_return``, on each
    operation's kernel function (kprobes and kretprobes)."""
    for op, fn in funcs.items():
        b.attach_kprobe(event=fn, fn_name=rw_entry if op in ("read", "write") else f"trace_{op}_entry")
        b.attach_kretprobe(event=fn, fn_name=f"trace_{op}_return")


def print_dists(b: BPF, label: str, quoted: bool) -> None:
    """One histogram per operation, bcc's ``operation = read`` (libbpf-tools': ``operation = 'read'``)."""

    def name(op: bytes) -> str:
        text = op.decode("utf-8", "replace")
        return f"'{text}'" if quoted else text

    b["dist"].print_log2_hist(label, "operation", section_print_fn=name)
    b["dist"].clear()
    sys.stdout.flush()


# a line of the slower tools: libbpf-tools' columns, and bcc's (narrower COMM and PID)
LIBBPF_LINE = b"%-8s %-16s %-7d %1s %-7d %-8d %7.2f %s"
BCC_LINE = b"%-8s %-14.14s %-6d %1s %-7d %-8d %7.2f %s"


def slower_events(
    b: BPF, csv: bool, types: dict[int, bytes], line: bytes, end_unit_ns: int
) -> Callable[[int, Any, int], None]:
    """The perf callback printing ext4slower's events: a ``line``, or CSV (its end time in units of
    ``end_unit_ns``)."""

    def on_event(cpu: int, data: Any, size: int) -> None:
        e = b["events"].event(data)
        kind = types.get(e.type, b"?")
        if csv:
            end = int(BPF.monotonic_time() // end_unit_ns)
            printb(b"%d,%s,%d,%s,%d,%d,%d,%s" % (end, e.task, e.pid, kind, e.size, e.offset, e.delta_us, e.file))
            return
        now = common.strftime_now().encode()
        printb(line % (now, e.task, e.pid, kind, e.size, e.offset // 1024, e.delta_us / 1000, e.file))

    return on_event


# -- bcc's per-file-system tools (ext4dist, xfsdist, nfsslower, ...): ext4dist's and ext4slower's options
# and output, which the ext4 tools use too

BCC_TYPES = {0: b"R", 1: b"W", 2: b"O", 3: b"S"}


def add_dist_options(p: argparse.ArgumentParser) -> None:
    """bcc's ext4dist options: -T, -m, -p, interval and count."""
    p.add_argument("-T", "--notimestamp", action="store_true", help="don't include timestamp on interval output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="output in milliseconds")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("interval", nargs="?", type=common.positive_int, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")


def add_slower_options(p: argparse.ArgumentParser) -> None:
    """bcc's ext4slower options: -j, -p and the threshold."""
    p.add_argument("-j", "--csv", action="store_true", help="just print fields: comma-separated values")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("min_ms", nargs="?", type=int, default=10, help="minimum I/O duration to trace, in ms (default 10)")


def print_dist_intervals(b: BPF, args: argparse.Namespace, fs_name: str) -> None:
    """bcc's ext4dist output: a histogram per operation every interval (or once, at Ctrl-C)."""
    print(f"Tracing {fs_name} operation latency... Hit Ctrl-C to end.", flush=True)
    for last in common.intervals(args.interval or 99999999, args.count):
        print()
        if args.interval and not args.notimestamp:
            print(common.strftime_now() + ":")
        print_dists(b, "msecs" if args.milliseconds else "usecs", quoted=False)
        if last:
            break


def print_slower_events(b: BPF, args: argparse.Namespace, fs_name: str) -> None:
    """bcc's ext4slower output: its header (or the CSV one), then a line per slow operation until Ctrl-C."""
    if args.csv:
        print("ENDTIME_us,TASK,PID,TYPE,BYTES,OFFSET_b,LATENCY_us,FILE", flush=True)
    else:
        what = f"Tracing {fs_name} operations"
        print(what if args.min_ms == 0 else f"{what} slower than {args.min_ms} ms")
        print(
            "%-8s %-14s %-6s %1s %-7s %-8s %7s %s"
            % ("TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME"),
            flush=True,
        )
    b["events"].open_perf_buffer(slower_events(b, args.csv, BCC_TYPES, BCC_LINE, 1000), page_cnt=64)
    common.poll_events(b)


def bcc_dist_parser(fs: str) -> argparse.ArgumentParser:
    name = f"{fs}dist"
    examples = f"""examples:
    rbcc tool {name}            # show operation latency as a histogram
    rbcc tool {name} -p 181     # trace PID 181 only
    rbcc tool {name} 1 10       # print 1 second summaries, 10 times
    rbcc tool {name} -m 5       # 5s summaries, milliseconds
    (the same as `rbcc tool fsdist -t {fs}`, with bcc's options)
"""
    p = common.parser(name, f"Summarize {NAMES[fs]} operation latency", examples)
    add_dist_options(p)
    return p


def bcc_dist_main(fs: str, argv: Sequence[str] | None) -> int:
    name = f"{fs}dist"
    args = bcc_dist_parser(fs).parse_args(argv)

    def run() -> int:
        b = load(args, name, fs, dist_text(args, fs, getattr=fs == "nfs"), "trace_entry", DIST_ALTERNATIVE)
        if b is None:
            return 0
        with b:
            print_dist_intervals(b, args, NAMES[fs])
        return 0

    return common.guard(name, run)


def bcc_slower_parser(fs: str) -> argparse.ArgumentParser:
    name = f"{fs}slower"
    examples = f"""examples:
    rbcc tool {name}             # trace operations slower than 10 ms (default)
    rbcc tool {name} 1           # trace operations slower than 1 ms
    rbcc tool {name} -j 1        # ... 1 ms, parsable output (csv)
    rbcc tool {name} 0           # trace all operations (warning: verbose)
    rbcc tool {name} -p 185      # trace PID 185 only
    (the same as `rbcc tool fsslower -t {fs}`, with bcc's options)
"""
    p = common.parser(name, f"Trace common {NAMES[fs]} file operations slower than a threshold", examples)
    add_slower_options(p)
    return p


def bcc_slower_main(fs: str, argv: Sequence[str] | None) -> int:
    name = f"{fs}slower"
    args = bcc_slower_parser(fs).parse_args(argv)

    def run() -> int:
        b = load(args, name, fs, slower_text(args.pid, args.min_ms), "trace_rw_entry", SLOWER_ALTERNATIVE)
        if b is None:
            return 0
        with b:
            print_slower_events(b, args, NAMES[fs])
        return 0

    return common.guard(name, run)
