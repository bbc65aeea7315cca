"""A C program the function-timing tests (funclatency, funcslower, funcinterval) probe: calls that take a
known time, a fast call, a recursion and a USDT start/done pair, made when the test says so; and a
reader of log2 histograms as the tools print them."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from _bpfutil import build_c_program

# Waits for a line on stdin (so the probes go in first), then runs its plan (argv): "nMS" calls
# rbcc_nap(MS), which sleeps MS milliseconds between USDT probes rbcctest:nap__start and nap__done;
# "q" calls rbcc_quick(), which returns at once; "rDEPTH:MS" calls rbcc_nest(DEPTH, MS), which recurses
# DEPTH levels and naps MS at the bottom. Prints "done", then waits for a second line.
PROGRAM_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/sdt.h>

__attribute__((noinline)) long rbcc_nap(long ms) {
    DTRACE_PROBE1(rbcctest, nap__start, ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    DTRACE_PROBE1(rbcctest, nap__done, ms);
    return ms;
}

__attribute__((noinline)) long rbcc_quick(long x, long y) {
    __asm__ volatile("" ::: "memory");
    return x * 3 + y;
}

__attribute__((noinline)) long rbcc_nest(long depth, long ms) {
    long r = depth > 1 ? rbcc_nest(depth - 1, ms) : rbcc_nap(ms);
    __asm__ volatile("" ::: "memory");
    return r + 1;
}

int main(int argc, char **argv) {
    char line[64];
    long total = 0;
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == 'n')
            total += rbcc_nap(atol(argv[i] + 1));
        else if (argv[i][0] == 'q')
            total += rbcc_quick(0xbeef, i);
        else if (argv[i][0] == 'r')
            total += rbcc_nest(atol(argv[i] + 1), atol(strchr(argv[i], ':') + 1));
    }
    printf("done %ld\n", total);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""


def need_sdt_header() -> None:
    """Skips the test, saying so, where sys/sdt.h (the USDT probes of the test programs) is missing."""
    probe = subprocess.run(["cpp", "-x", "c", "-"], input=b"#include <sys/sdt.h>\n", capture_output=True)
    if probe.returncode:
        pytest.skip("sys/sdt.h is missing (apt-get install systemtap-sdt-dev)")


def build(workdir: Path) -> Path:
    need_sdt_header()
    # -O0 keeps every function whole and called (no inlining, no clones, no tail calls)
    return build_c_program(workdir, "timed", PROGRAM_C, "-O0", "-fno-omit-frame-pointer")


class Timed:
    """A running test program with its arguments (this one's plan, a stand-in server's queries), blocked
    until :meth:`go`; it prints "done ..." when it has run them."""

    def __init__(self, binary: Path, plan: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen([str(binary), *plan], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def go(self) -> None:
        """Let it run its plan; returns once it has."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("done"), line


@contextmanager
def timed(binary: Path, *plan: str) -> Iterator[Timed]:
    t = Timed(binary, plan)
    try:
        yield t
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
        t.proc.communicate()


_ROW = re.compile(r"^\s*(\d+) -> (\d+)\s*: (\d+)\s*\|")


def histograms(out: str) -> dict[str, dict[int, int]]:
    """Each histogram of the output by its section line ("" before any), as {low end of slot: count}
    for the slots that counted something."""
    found: dict[str, dict[int, int]] = {}
    section = ""
    for line in out.splitlines():
        row = _ROW.match(line)
        if row:
            if int(row[3]):
                found.setdefault(section, {})[int(row[1])] = int(row[3])
        elif "=" in line and not line.startswith("avg"):
            section = line.strip()
    return found
