"""An ext4 file system of the test's own, for the tools that probe ext4 and the page cache beneath it.

The VM of `make test-kernels` (where kprobes exist) has no disk: its / is the host's over 9p and its
TMPDIR a tmpfs, neither of which goes through ext4 or, for tmpfs, the page cache's usual functions. So
the test makes an ext4 image in TMPDIR and loop-mounts it (tests/vm/run-in-vm.sh loads the loop and
ext4 modules at boot)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def ext4_dir(size_mb: int = 64) -> Iterator[Path]:
    """The root of a fresh ext4 file system (4 KiB blocks, mounted noatime so reads write nothing),
    unmounted and removed afterwards; skips, saying what is missing, where it cannot be made."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("needs mkfs.ext4 (e2fsprogs) to make an ext4 file system")
    with tempfile.TemporaryDirectory(prefix="rbcc-ext4-") as tmp:
        image, mnt = Path(tmp) / "image", Path(tmp) / "mnt"
        mnt.mkdir()
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        # initialised up front: no lazy-init thread writing in the background while tools count
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image)],
            check=True,
            capture_output=True,
        )
        done = subprocess.run(
            ["mount", "-t", "ext4", "-o", "loop,noatime", str(image), str(mnt)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"needs a loop device and ext4 to mount an ext4 image: {done.stderr.strip()}")
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)


def write_fresh(path: Path, pages: int) -> None:
    """A new file of ``pages`` pages, written through the page cache, on disk, then dropped from the
    cache (so reading it back reads the disk)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        chunk = b"\x5a" * (16 * PAGE)
        for _ in range(pages // 16):
            os.write(fd, chunk)
        os.write(fd, chunk[: (pages % 16) * PAGE])
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_each_page(path: Path, pages: int) -> None:
    """Read the file one page per read(), last page first: the kernel marks a folio accessed once per
    read that starts in it, and a backward read starts each one in a folio the previous did not touch."""
    fd = os.open(path, os.O_RDONLY)
    try:
        for i in reversed(range(pages)):
            assert len(os.pread(fd, PAGE, i * PAGE)) == PAGE
    finally:
        os.close(fd)


def file_work(path: Path, writes: int, reads: int) -> None:
    """Open ``path`` (new) and write ``writes`` pages, fsync it; open it again and read ``reads`` pages:
    one ext4 call per system call."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for i in range(writes):
            assert os.pwrite(fd, b"\x5a" * PAGE, i * PAGE) == PAGE
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        for i in range(reads):
            assert len(os.pread(fd, PAGE, i * PAGE)) == PAGE
    finally:
        os.close(fd)
