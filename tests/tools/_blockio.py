"""Block I/O the block-tool tests cause themselves: O_DIRECT reads and writes, from this process, to a
file on the root file system (so they reach its disk as requests of known size and direction)."""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def root_disk() -> str:
    """The name of the whole disk under / (``vda``), from sysfs."""
    dev = os.stat("/").st_dev
    node = Path(os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"))
    return node.parent.name if (node / "partition").exists() else node.name


class DirectFile:
    """A file on / whose blocks are allocated up front, so O_DIRECT I/O to it is data I/O only, each
    call one request of the size asked for."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        with open(path, "wb") as f:
            f.write(b"\xa5" * size)
            f.flush()
            os.fsync(f.fileno())
        self.fd = os.open(path, os.O_RDWR | os.O_DIRECT)

    def write(self, count: int, size: int) -> None:
        buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT wants
        buf.write(b"\x5a" * size)
        for i in range(count):
            assert os.pwrite(self.fd, buf, i * size) == size

    def read(self, count: int, size: int) -> None:
        buf = mmap.mmap(-1, size)
        for i in range(count):
            assert os.preadv(self.fd, [buf], i * size) == size

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def direct_file(size: int = 1 << 20) -> Iterator[DirectFile]:
    """A :class:`DirectFile` of ``size`` bytes in /var/tmp (on /), removed afterwards."""
    where = Path("/var/tmp")
    if os.stat(where).st_dev != os.stat("/").st_dev:
        pytest.skip("/var/tmp is not on the root file system: the test needs a file on the root disk")
    with tempfile.TemporaryDirectory(dir=where, prefix="rbcc-bio-") as tmp:
        f = DirectFile(Path(tmp) / "data", size)
        try:
            yield f
        finally:
            f.close()


# The kprobe programs ext4dist and ext4slower share besides their read/write entry: the entries of open
# and fsync, and the returns of all four operations.
EXT4_PROGRAMS = (
    "trace_open_entry",
    "trace_fsync_entry",
    "trace_read_return",
    "trace_write_return",
    "trace_open_return",
    "trace_fsync_return",
)
