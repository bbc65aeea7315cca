"""Helpers shared by the end-to-end tests (real kernel, real programs)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator


def target_cflags(**defines: object) -> list[str]:
    """``-DTARGET=<our pid>`` plus ``-DNAME=value`` for each keyword, for BPF(cflags=...)."""
    return [f"-DTARGET={os.getpid()}"] + [f"-D{name}={value}" for name, value in defines.items()]


def poll_until(poll: Callable[[int], object], done: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Call ``poll(100)`` (a perf/ring buffer poll, in ms) until ``done()`` or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        poll(100)
    return True


def possible_cpus() -> int:
    """The number of possible CPUs (the length of a per-CPU map value), from sysfs."""
    with open("/sys/devices/system/cpu/possible") as f:
        spec = f.read().strip()
    count = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def own_comm() -> bytes:
    """This process's comm, as bpf_get_current_comm() sees it from the main thread."""
    with open("/proc/self/comm", "rb") as f:
        return f.read().rstrip(b"\n")


@contextlib.contextmanager
def pinned_to_one_cpu() -> Iterator[int]:
    """Run the block on a single CPU, so every event lands in the same per-CPU buffer."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)
