"""A memory cgroup with a small limit for tests that need memory pressure confined to their own
processes (an OOM kill, direct reclaim): cgroup v2 where it has the memory controller, else v1's."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _memory_root() -> tuple[Path, str]:
    """(directory to make the cgroup in, "v2" or "v1"), or skip saying what is missing."""
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    for _, point, kind, *_ in mounts:
        if kind == "cgroup2" and "memory" in (Path(point) / "cgroup.controllers").read_text().split():
            if "memory" not in (Path(point) / "cgroup.subtree_control").read_text().split():
                (Path(point) / "cgroup.subtree_control").write_text("+memory")
            return Path(point), "v2"
    for _, point, kind, opts, *_ in mounts:
        if kind == "cgroup" and "memory" in opts.split(","):
            return Path(point), "v1"
    pytest.skip("no memory cgroup controller is mounted (v1 or v2): cannot confine memory pressure to the test")


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[Path]:
    """A fresh memory cgroup limited to ``limit`` bytes without swap; its processes are killed and the
    cgroup removed afterwards. Put a process in it by writing its PID to ``path / "cgroup.procs"``."""
    root, version = _memory_root()
    path = root / f"rbcc-test-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    try:
        if version == "v2":
            (path / "memory.max").write_text(str(limit))
            (path / "memory.swap.max").write_text("0")
        else:
            (path / "memory.limit_in_bytes").write_text(str(limit))
            if (path / "memory.memsw.limit_in_bytes").exists():
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
        yield path
    finally:
        for _ in range(50):
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        path.rmdir()


def joiner(cgroup: Path):  # noqa: ANN201
    """A preexec_fn that moves the child into ``cgroup`` before it runs anything."""
    procs = str(cgroup / "cgroup.procs")

    def join() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    return join
