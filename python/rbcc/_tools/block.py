"""What the block I/O and file system tools share: which block tracepoints stand for bcc's kprobes, the
``-d DISK`` option and its filter, disk names by device number, bcc's names for request flags (for
biolatency, biosnoop, biotop, biopattern, bitesize); the file behind a descriptor (for vfsstat and
filetop, which count at the syscalls).

bcc hooks functions of the block layer with kprobes; each of them fires a tracepoint of the same
moment, and the raw form of those tracepoints hands the program the ``struct request *`` itself, so
a request keys maps exactly as bcc's do:

- ``blk_account_io_start`` (the request is made, in the submitting task) → ``block_io_start``;
  kernels before 6.5 lack it, and ``block_rq_insert`` (the request enters a queue, usually still in
  the submitting task) stands in;
- ``blk_mq_start_request`` (the request goes to the driver) → ``block_rq_issue``;
- ``blk_account_io_done`` (the request is done) → ``block_rq_complete``, which fires for every
  request (block_io_done only where the queue keeps I/O statistics).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .. import BPF
from . import common

# The request a block raw tracepoint is about: its first argument on every one used here.
REQUEST = "struct request *rq = (struct request *)ctx->args[0];"

# When and how much each request went to the driver (with its start sector), for biosnoop and biotop:
# ``issued`` by request, set by trace_req_start at block_rq_issue (DISK_FILTER: C that may leave).
ISSUE_C = r"""
struct issued_t {
    u64 ts;
    u64 len;
    u64 sector;
};

BPF_HASH(issued, struct request *, struct issued_t, 10240);

// the request goes to the driver
int trace_req_start(struct bpf_raw_tracepoint_args *ctx) {
    REQUEST
    DISK_FILTER
    struct issued_t at = {.ts = bpf_ktime_get_ns(), .len = rq->__data_len, .sector = rq->__sector};
    issued.update(&rq, &at);
    return 0;
}
"""

# bcc's blk_fill_rwbs() names for the op in the low bits of cmd_flags, and for its flag bits.
REQ_OP_BITS = 8
REQ_OPS = {
    0: "Read",
    1: "Write",
    2: "Flush",
    3: "Discard",
    5: "SecureErase",
    6: "ZoneReset",
    7: "WriteSame",
    9: "WriteZeros",
}
# (bit above the op, name), innermost first: each name is prefixed in turn, as bcc prints them
REQ_FLAGS = (
    (3, "Sync"),
    (4, "Metadata"),
    (9, "ForcedUnitAccess"),
    (5, "Priority"),
    (6, "NoMerge"),
    (7, "Idle"),
    (11, "ReadAhead"),
    (12, "Background"),
    (13, "NoWait"),
)


class Disk(NamedTuple):
    name: str
    major: int
    minor: int


def disk_arg(name: str) -> Disk:
    """argparse type of ``-d DISK``: a block device under /dev, as bcc's tools take it."""
    path = os.path.join("/dev", name)
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        raise argparse.ArgumentTypeError(f"no such disk {name!r}") from None
    return Disk(name, os.major(rdev), os.minor(rdev))


def add_disk(p: argparse.ArgumentParser, help: str = "Trace this disk only") -> None:
    p.add_argument("-d", "--disk", type=disk_arg, help=help)


def disk_filter(disk: Disk | None, rq: str = "rq") -> str:
    """C that leaves the probe for a request of another disk than ``disk`` (nothing when None)."""
    if disk is None:
        return ""
    return (
        f"if ({rq}->q->disk->major != {disk.major} || {rq}->q->disk->first_minor != {disk.minor})\n        return 0;\n"
    )


def mkdev(major: int, minor: int) -> int:
    """The kernel's dev_t as block tracepoints report it (20 bits of minor)."""
    return (major << 20) | minor


def disk_names() -> dict[tuple[int, int], str]:
    """Block devices and partitions by (major, minor), from /proc/partitions."""
    names = {}
    try:
        with open("/proc/partitions") as f:
            for line in f.readlines()[2:]:
                fields = line.split()
                if len(fields) == 4:
                    names[(int(fields[0]), int(fields[1]))] = fields[3]
    except OSError:
        pass
    return names


def flags_name(flags: int) -> str:
    """bcc's text for a request's cmd_flags: the op, prefixed by each flag set."""
    desc = REQ_OPS.get(flags & ((1 << REQ_OP_BITS) - 1), "Unknown")
    for bit, name in REQ_FLAGS:
        if flags & (1 << (REQ_OP_BITS + bit)):
            desc = f"{name}-{desc}"
    return desc


def submit_tracepoint() -> str:
    """The tracepoint at which a request is made in the task that submits it (see the module doc)."""
    return "block_io_start" if BPF.tracepoint_exists("block", "block_io_start") else "block_rq_insert"


def attach_requests(b: BPF) -> None:
    """Attach biosnoop's and biotop's programs: trace_pid_start where a request is made,
    trace_req_start where it is issued, trace_req_completion where it is done."""
    b.attach_raw_tracepoint(tp=submit_tracepoint(), fn_name="trace_pid_start")
    b.attach_raw_tracepoint(tp="block_rq_issue", fn_name="trace_req_start")
    b.attach_raw_tracepoint(tp="block_rq_complete", fn_name="trace_req_completion")


CLEAR = "\033[H\033[2J"  # what clear(1) writes on an ANSI terminal


def add_top_options(p: argparse.ArgumentParser) -> None:
    """The top-like tools' (biotop, filetop) -C, -r and ``interval count`` (1 second, until Ctrl-C)."""
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=common.positive_int, default=20, help="maximum rows to print, default 20")
    p.add_argument("interval", nargs="?", type=common.positive_int, default=1, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=99999999, help="number of outputs")


def top_screens(args: argparse.Namespace) -> Iterator[None]:
    """Each interval, the screen cleared (unless -C) and the time and load average printed, then the
    caller's rows; after the last, "Detaching..."."""
    for last in common.intervals(args.interval, args.count):
        print(end=CLEAR if not args.noclear else "\n")
        with open("/proc/loadavg") as f:
            print("%-8s loadavg: %s" % (common.strftime_now(), f.read()))
        yield
        sys.stdout.flush()
        if last:
            print("Detaching...")
            break


# The open file behind a descriptor of the current task, for tools that count at the syscalls (which
# pass descriptors) what bcc counts in the VFS (which is passed files). NULL when out of range.
FILE_OF_FD = r"""
static __always_inline struct file *file_of_fd(int fd) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = task->files->fdt;
    if (fd < 0 || fd >= fdt->max_fds)
        return NULL;
    struct file **fds = fdt->fd;
    struct file *file = NULL;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
    return file;
}
"""

# What filetop and dirtop count per key: the reads and writes, and the bytes they asked for, at the
# read, pread64, write and pwrite64 syscalls (where bcc's kprobes on vfs_read/vfs_write see them). The
# tool defines do_entry(fd, count, is_read) between RW_COUNTS and RW_SYSCALLS.
RW_COUNTS = r"""
struct val_t {
    u64 reads;
    u64 writes;
    u64 rbytes;
    u64 wbytes;
};

static __always_inline void add_rw(struct val_t *val, u64 count, int is_read) {
    if (is_read) {
        __sync_fetch_and_add(&val->reads, 1);
        __sync_fetch_and_add(&val->rbytes, count);
    } else {
        __sync_fetch_and_add(&val->writes, 1);
        __sync_fetch_and_add(&val->wbytes, count);
    }
}
"""
RW_SYSCALLS = r"""
TRACEPOINT_PROBE(syscalls, sys_enter_read) { return do_entry(args->fd, args->count, 1); }
TRACEPOINT_PROBE(syscalls, sys_enter_pread64) { return do_entry(args->fd, args->count, 1); }
TRACEPOINT_PROBE(syscalls, sys_enter_write) { return do_entry(args->fd, args->count, 0); }
TRACEPOINT_PROBE(syscalls, sys_enter_pwrite64) { return do_entry(args->fd, args->count, 0); }
"""

# The file was created by this open (include/linux/fs.h; not in BTF, being a #define)
FMODE_CREATED = 1 << 20


def need_kprobes(tool: str, functions: str, why: str, alternative: str) -> None:
    """Raise KernelFeatureError (one line, through common.guard) when this kernel has no kprobes, for
    a tool whose only source is kprobes on ``functions``."""
    from .. import _core
    from ..errors import KernelFeatureError

    if not _core.has_kprobes():
        raise KernelFeatureError(
            f"needs kprobes on {functions} ({why}), and this kernel has none (CONFIG_KPROBES is not set); "
            + alternative,
            feature="kprobes",
            alternative=alternative,
        )


def load_with_kprobes(
    args: argparse.Namespace,
    tool: str,
    text: str,
    attach: Callable[[BPF], None],
    functions: str,
    why: str,
    alternative: str,
) -> BPF | None:
    """A kprobe-only tool's program (cachestat, cachetop, ext4dist, fsdist, ...): under --ebpf the C
    printed and None, before any kernel check, as --ebpf needs no kernel; without kprobes, need_kprobes's
    one line (``functions``, ``why``, ``alternative``); else loaded and ``attach``-ed, and cleaned up if
    attaching fails, so that no probe attached before the failure is left behind."""
    if args.ebpf:
        print(text)
        return None
    need_kprobes(tool, functions, why, alternative)
    b = BPF(text=text)
    try:
        attach(b)
    except BaseException:
        b.cleanup()
        raise
    return b
