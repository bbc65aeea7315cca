"""Something to look at, for the pictures of examples/pictures.py and examples/profile_and_heatmap.ipynb:
a small C program, built with frame pointers so that its user stacks are whole, that spins in two
functions (one twice as long as the other) and reads /dev/zero in between, in reads that grow from 4 KiB
to 1 MiB and back every few seconds; and CPU hogs that queue behind each other.

Needs gcc (``make setup`` installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["COMM", "build", "hogs", "program", "running"]

COMM = "rbcc-demo"

SOURCE = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

__attribute__((noinline)) unsigned long demo_mix(unsigned long h, int rounds) {
    for (int i = 0; i < rounds; i++)
        h = (h ^ (h >> 7)) * 0x9E3779B97F4A7C15UL + i;
    return h;
}

__attribute__((noinline)) unsigned long demo_compress(unsigned long h) { return demo_mix(h, 200000); }

__attribute__((noinline)) unsigned long demo_checksum(unsigned long h) { return demo_mix(h, 100000); }

__attribute__((noinline)) void demo_read(int fd, size_t size) { read(fd, buf, size); }

int main(int argc, char **argv) {
    prctl(PR_SET_NAME, argc > 1 ? argv[1] : "rbcc-demo");
    int hog = argc > 2;  /* a hog only spins */
    int fd = open("/dev/zero", O_RDONLY);
    volatile unsigned long h = 1;
    for (;;) {
        h = demo_compress(h);
        h = demo_checksum(h);
        if (hog)
            continue;
        /* small reads for three seconds, then big ones: the latency heatmap shows the change */
        size_t size = (time(NULL) / 3) % 2 ? sizeof(buf) : 4096;
        for (int i = 0; i < 8; i++)
            demo_read(fd, size);
    }
}
"""


def build(folder: Path) -> Path:
    """The workload's binary, compiled into ``folder``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("the workload is a C program: install gcc (make setup does)")
    (folder / "demo.c").write_text(SOURCE)
    binary = folder / "demo"
    # -O0: every call stays a call (no inlining, no tail jumps), so each function is a frame of its own
    flags = ["-O0", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"]
    subprocess.run([gcc, *flags, "-o", str(binary), str(folder / "demo.c")], check=True)
    return binary


@contextlib.contextmanager
def _processes(argvs: list[list[str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(argv) for argv in argvs]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextlib.contextmanager
def program() -> Iterator[Path]:
    """The workload's binary, built in a folder that lasts as long as the block."""
    with tempfile.TemporaryDirectory() as folder:
        yield build(Path(folder))


@contextlib.contextmanager
def running(binary: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The workload, running until the block ends (its process's name is COMM)."""
    with _processes([[str(binary), COMM]]) as procs:
        yield procs[0]


@contextlib.contextmanager
def hogs(binary: Path, n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` processes that only spin: more than the CPUs, and threads wait in the run queue."""
    with _processes([[str(binary), f"rbcc-hog{i}", "hog"] for i in range(n)]) as procs:
        yield procs


if __name__ == "__main__":
    with program() as binary, running(binary) as p:
        print(f"{COMM} running as {p.pid}; Ctrl-C ends it", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            p.wait()
