#!/usr/bin/env python3
"""bitehist: a histogram of block I/O sizes, from the block:block_rq_issue tracepoint.

Usage: bitehist.py [DURATION]   (default: until Ctrl-C). With a duration, it makes some I/O itself.
"""

import mmap
import os
import sys
import tempfile
import time

from rbcc import BPF

prog = r"""
BPF_HISTOGRAM(dist);

TRACEPOINT_PROBE(block, block_rq_issue) {
    dist.increment(bpf_log2l(args->bytes / 1024));
    return 0;
}
"""


def make_io() -> None:
    """Direct writes of a few sizes, so the histogram has something in it."""
    fd, path = tempfile.mkstemp(dir="/var/tmp")
    os.close(fd)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        for kib in (4, 16, 64, 256):
            # O_DIRECT needs page-aligned memory: an anonymous mmap is.
            with mmap.mmap(-1, kib * 1024) as buf:
                os.write(fd, buf)
        os.close(fd)
    except OSError:
        pass
    finally:
        os.unlink(path)
        os.sync()


duration = float(sys.argv[1]) if len(sys.argv) > 1 else None
b = BPF(text=prog)
print("Tracing block I/O... Hit Ctrl-C to end.")
try:
    if duration is None:
        while True:
            time.sleep(99999999)
    make_io()
    time.sleep(duration)
except KeyboardInterrupt:
    print()

b["dist"].print_log2_hist("kbytes")
