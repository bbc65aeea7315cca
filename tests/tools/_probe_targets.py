"""A C program the multi-tool tests (trace, argdist, funccount, stackcount) probe: functions with
arguments and return values, a USDT probe, and reads of known sizes, run when the test says so."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _bpfutil import build_c_program

# Waits for a line on stdin (so the probes go in first); then N times (argv[1]) calls
# rbcc_outer(10*i, "name-i") -> rbcc_leaf (which fires USDT rbcc:added(10*i, "name-i") and returns
# 10*i + strlen), reads READS[i % 3] bytes from /dev/zero, prints "done", and waits for a second line.
PROGRAM_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>

static char names[4][16];
static const int READS[3] = {100, 5000, 70000};
static char buffer[70000];

__attribute__((noinline)) int rbcc_leaf(int a, const char *name) {
    DTRACE_PROBE2(rbcc, added, a, name);
    return a + (int)strlen(name);
}

__attribute__((noinline)) int rbcc_outer(int a, const char *name) {
    return rbcc_leaf(a, name) + 1;
}

int main(int argc, char **argv) {
    char line[64];
    int n = argc > 1 ? atoi(argv[1]) : 3;
    int zero = open("/dev/zero", O_RDONLY);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    int total = 0;
    for (int i = 1; i <= n; i++) {
        snprintf(names[i % 4], sizeof names[0], "name-%d", i);
        total += rbcc_outer(i * 10, names[i % 4]);
        if (read(zero, buffer, READS[i % 3]) < 0)
            return 2;
    }
    printf("done %d\n", total);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""

READS = (100, 5000, 70000)


def build(workdir: Path) -> Path:
    cpp = shutil.which("cpp")
    if cpp and subprocess.run([cpp, "-x", "c", "-"], input=b"#include <sys/sdt.h>\n", capture_output=True).returncode:
        pytest.skip("sys/sdt.h is missing (apt-get install systemtap-sdt-dev)")
    # -O0 keeps the functions whole (no clones, no inlining) and their frame pointers for user stacks
    return build_c_program(workdir, "probed", PROGRAM_C, "-O0", "-fno-omit-frame-pointer")


class Probed:
    """A running copy of the program, blocked until :meth:`go`."""

    def __init__(self, binary: Path, calls: int) -> None:
        self.calls = calls
        self.proc = subprocess.Popen(
            [str(binary), str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = self.proc.pid
        self.output = ""

    def go(self) -> None:
        """Let it make its calls; returns once it has."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.output = self.proc.stdout.readline()
        assert self.output.startswith("done"), self.output


@contextmanager
def probed(binary: Path, calls: int = 3) -> Iterator[Probed]:
    p = Probed(binary, calls)
    try:
        yield p
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
        p.proc.communicate()
