"""Workloads for the scheduler/CPU tool tests: a child process, started before the tool so the tool can
be given its PID, that waits for the word to go and then does a known amount of sleeping or spinning."""

from __future__ import annotations

import contextlib
import mmap
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from _bpfutil import child_env

# Each sleep is one voluntary switch away from the CPU and one wakeup back onto it.
SLEEPER = (
    "import ctypes, sys, time\nctypes.CDLL(None).prctl(15, b'{comm}', 0, 0, 0)\n"
    "sys.stdin.readline()\nfor _ in range({n}):\n    time.sleep({seconds})\n"
)

# Spins in a named function, so a stack of it names the loop, until it has had {seconds} of CPU time
# (not of wall time: the machine may be busy); comm is set so tools can show it.
SPINNER = r"""
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, b"{comm}", 0, 0, 0)  # PR_SET_NAME
sys.stdin.readline()

def rbcc_spin(deadline):
    n = 0
    while time.process_time() < deadline:
        n += 1
    return n

rbcc_spin(time.process_time() + {seconds})
"""


class Child:
    """A Python child that blocks on stdin until :meth:`go`; ``pid`` is known before it starts its work."""

    def __init__(self, code: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, env=child_env(), stdout=subprocess.DEVNULL
        )
        self.pid = self.proc.pid

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def finished(self) -> bool:
        return self.proc.poll() is not None

    def run(self, timeout: float = 10) -> None:
        """Let it work and wait until it is done."""
        self.go()
        assert self.proc.wait(timeout=timeout) == 0


@contextlib.contextmanager
def child(code: str) -> Iterator[Child]:
    c = Child(code)
    try:
        yield c
    finally:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait()


@contextlib.contextmanager
def busy_loops(cpus: list[int]) -> Iterator[None]:
    """One endless Python loop pinned to each CPU listed (a CPU listed n times gets n), killed at the end."""
    spin = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], preexec_fn=lambda c=c: os.sched_setaffinity(0, {c})
        )
        for c in cpus
    ]
    try:
        # running, not still starting Python: a sample taken before would see the CPU idle
        deadline = time.monotonic() + 10
        while not all(_cpu_ticks(p.pid) > 0 for p in spin) and time.monotonic() < deadline:
            time.sleep(0.02)
        yield
    finally:
        for p in spin:
            p.kill()
            p.wait()


def _cpu_ticks(pid: int) -> int:
    """User plus system clock ticks ``pid`` has run (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def sleeper(n: int, seconds: float = 0.005, comm: str = "rbcc-sleeper") -> contextlib.AbstractContextManager[Child]:
    return child(SLEEPER.format(n=n, seconds=seconds, comm=comm))


def spinner(comm: str, seconds: float) -> contextlib.AbstractContextManager[Child]:
    return child(SPINNER.format(comm=comm, seconds=seconds))


def sections(text: str, header: str) -> dict[str, str]:
    """The histogram text under each ``header = X`` line (bcc's -P/-L sections), by X."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(f"{header} = "):
            current = line.split(" = ", 1)[1]
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def irq_counts(cpu: int | None = None) -> dict[str, int]:
    """Interrupts so far by handler name (on all CPUs, or on ``cpu``), from /proc/interrupts."""
    counts: dict[str, int] = {}
    with open("/proc/interrupts") as f:
        ncpu = len(f.readline().split())
        for line in f:
            fields = line.split()
            if fields and fields[0].rstrip(":").isdigit() and len(fields) > ncpu + 1:
                name = fields[-1]
                per_cpu = [int(n) for n in fields[1 : ncpu + 1]]
                counts[name] = counts.get(name, 0) + (sum(per_cpu) if cpu is None else per_cpu[cpu])
    return counts


def direct_writes(path: Path, n: int) -> None:
    """``n`` synchronous 4 KiB O_DIRECT writes to ``path`` (on a real disk): each one a request the
    device completes with an interrupt."""
    block = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
    block.write(b"r" * 4096)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_DIRECT | os.O_DSYNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, 4096 * n)
        os.fsync(fd)
        for i in range(n):
            os.pwrite(fd, block, 4096 * i)
    finally:
        os.close(fd)


def softirq_counts(cpu: int | None = None) -> dict[str, int]:
    """Softirqs run so far by kind, lower case as the tools name them (on all CPUs, or on ``cpu``)."""
    counts: dict[str, int] = {}
    with open("/proc/softirqs") as f:
        f.readline()
        for line in f:
            name, *per_cpu = line.split()
            values = [int(n) for n in per_cpu]
            counts[name.rstrip(":").lower()] = sum(values) if cpu is None else values[cpu]
    return counts


def loopback_packets(n: int) -> None:
    """``n`` UDP packets over loopback, each received before the next is sent: loopback hands every
    packet to the receive softirq (net_rx)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        for _ in range(n):
            tx.sendto(b"rbcc", rx.getsockname())
            rx.recv(16)
