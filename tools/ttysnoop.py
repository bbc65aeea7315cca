#!/usr/bin/env python3
"""ttysnoop: snoop the output written to a pts or tty device, e.g. a shell's terminal.

Watches the write() and writev() syscalls (their sys_enter tracepoints) of every process, keeping
those whose descriptor is the watched device (of a writev(), the first -s bytes of each of its first
8 buffers): the file behind the descriptor (task->files->fdt) has
the device's inode. bcc hooks tty_write() with a kprobe instead, which also sees text the kernel
itself writes to the terminal (echo of typed input, line discipline output): ttysnoop here shows
what processes write to it, through any descriptor they opened on the device itself (a write
through /dev/tty, another inode, is not seen, as in bcc).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rbcc._tools import block, common

__all__ = ["bpf_text", "build_parser", "device_path", "main"]

EXAMPLES = """examples:
    rbcc tool ttysnoop /dev/pts/2          # snoop output from /dev/pts/2
    rbcc tool ttysnoop 2                   # snoop output from /dev/pts/2 (shortcut)
    rbcc tool ttysnoop /dev/console        # snoop output from the system console
    rbcc tool ttysnoop /dev/tty0           # snoop output from /dev/tty0
    rbcc tool ttysnoop /dev/pts/2 -s 1024  # snoop output from /dev/pts/2 with data size 1024
    rbcc tool ttysnoop /dev/pts/2 -c 2     # snoop output from /dev/pts/2 with 2 checks for 256 bytes of data in buffer
                                             (potentially retrieving 512 bytes)
"""

MAX_IOV = 8  # iovecs of one writev() looked at

BPF_TEXT = r"""
#include <linux/fs.h>
#include <linux/fdtable.h>
#include <linux/uio.h>

#define BUFSIZE DATASIZE

struct data_t {
    int count;
    char buf[BUFMASK + 1];  // a power of two above BUFSIZE: masking a length with BUFMASK bounds it
};

BPF_PERCPU_ARRAY(scratch, struct data_t, 1);
BPF_PERF_OUTPUT(events);

FILE_OF_FD

static __always_inline int is_watched(int fd)
{
    struct file *file = file_of_fd(fd);
    if (file == NULL)
        return 0;
    struct inode *inode = file->f_inode;
    return inode->i_ino == INODE && inode->i_rdev == RDEV;
}

// at most DATACOUNT chunks of BUFSIZE bytes; returns the chunks left for what follows
static __always_inline int emit(void *ctx, const char *buf, u64 count, int chunks)
{
    int zero = 0;
    struct data_t *data = scratch.lookup(&zero);
    if (data == NULL)
        return 0;
    for (int i = 0; i < DATACOUNT; i++) {
        if (chunks <= 0 || count == 0)
            break;
        u64 n = count > BUFSIZE ? BUFSIZE : count;
        // hide n's bound from clang, which would drop the mask older verifiers need to see
        asm volatile("" : "+r"(n));
        if (bpf_probe_read_user(&data->buf, n & (BUFMASK), buf) != 0)
            return 0;
        data->count = n;
        events.perf_submit(ctx, data, sizeof(*data));
        count -= n;
        buf += n;
        chunks--;
    }
    return chunks;
}

TRACEPOINT_PROBE(syscalls, sys_enter_write) {
    if (!is_watched(args->fd))
        return 0;
    emit(args, args->buf, args->count, DATACOUNT);
    return 0;
}

// the first BUFSIZE bytes of each of the first MAX_IOV iovecs (a loop of chunks inside this loop
// would multiply the verifier's work past its limit)
TRACEPOINT_PROBE(syscalls, sys_enter_writev) {
    if (!is_watched(args->fd))
        return 0;
    int zero = 0;
    struct data_t *data = scratch.lookup(&zero);
    if (data == NULL)
        return 0;
    const struct iovec *vec = args->vec;
    u32 vlen = args->vlen;
    for (int i = 0; i < MAX_IOV; i++) {
        if (i >= vlen)
            break;
        struct iovec iov = {};
        if (bpf_probe_read_user(&iov, sizeof(iov), &vec[i]) != 0)
            break;
        u64 n = iov.iov_len > BUFSIZE ? BUFSIZE : iov.iov_len;
        if (n == 0)
            continue;
        asm volatile("" : "+r"(n));
        if (bpf_probe_read_user(&data->buf, n & (BUFMASK), iov.iov_base) != 0)
            break;
        data->count = n;
        events.perf_submit(args, data, sizeof(*data));
    }
    return 0;
}
"""


def device_path(device: str) -> str:
    """bcc's device argument: a path, or the number of a /dev/pts entry."""
    return device if device.startswith("/") else "/dev/pts/" + device


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("ttysnoop", "Snoop output from a pts or tty device, eg, a shell", EXAMPLES)
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("device", help="path to a tty device (eg, /dev/tty0) or pts number")
    p.add_argument(
        "-s", "--datasize", type=common.positive_int, default=256, help="size of the transmitting buffer (default 256)"
    )
    p.add_argument(
        "-c",
        "--datacount",
        type=common.positive_int,
        default=16,
        help="number of times we check for 'data-size' data (default 16)",
    )
    return p


def kernel_dev(rdev: int) -> int:
    """A device number as the kernel keeps it in an inode (MKDEV: 20 bits of minor)."""
    return (os.major(rdev) << 20) | os.minor(rdev)


def bpf_text(args: argparse.Namespace, inode: int = 0, rdev: int = 0) -> str:
    """The C for these options and the device's inode and device number (pure: no kernel needed)."""
    # a power of two above the data size: the verifier bounds each read with it
    mask = 1 << args.datasize.bit_length()
    return (
        BPF_TEXT.replace("FILE_OF_FD", block.FILE_OF_FD)
        .replace("DATASIZE", str(args.datasize))
        .replace("DATACOUNT", str(args.datacount))
        .replace("BUFMASK", str(mask - 1))
        .replace("MAX_IOV", str(MAX_IOV))
        .replace("INODE", str(inode))
        .replace("RDEV", str(kernel_dev(rdev)))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = device_path(args.device)
    try:
        st = os.stat(path)
    except OSError:
        print("Unable to read device %s. Exiting." % path)
        return 1
    return common.guard("ttysnoop", lambda: run(args, st.st_ino, st.st_rdev))


def run(args: argparse.Namespace, inode: int, rdev: int) -> int:
    b = common.load(args, bpf_text(args, inode, rdev))
    if b is None:
        return 0
    with b:
        if not args.noclear:
            print(end=block.CLEAR, flush=True)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            sys.stdout.write(bytes(e.buf[: e.count]).decode("utf-8", "replace"))
            sys.stdout.flush()

        b["events"].open_perf_buffer(on_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
