"""syncsnoop: a live run that sees the sync() this test makes, at the monotonic time it made it."""

from __future__ import annotations

import os
import time

import pytest
from _bpfutil import run_interrupted

from rbcc.tools import syncsnoop


def test_probes_sync_only() -> None:
    text = syncsnoop.bpf_text(syncsnoop.build_parser().parse_args([]))
    assert "TRACEPOINT_PROBE(syscalls, sys_enter_sync)" in text and "syncfs" not in text


@pytest.mark.needs_root
def test_sees_the_sync_this_test_makes() -> None:
    window: list[float] = []

    def workload() -> None:
        window.append(time.monotonic())
        os.sync()
        window.append(time.monotonic())
        os.fsync(os.open("/", os.O_RDONLY | os.O_DIRECTORY))  # not sync(): not shown

    def ours(out: str) -> list[float]:
        stamps = [float(f[0]) for f in (line.split() for line in out.splitlines()) if f[1:] == ["sync()"]]
        return [t for t in stamps if len(window) == 2 and window[0] <= t <= window[1]]

    out, _ = run_interrupted(["tool", "syncsnoop"], lambda h: h.split() == ["TIME(s)", "CALL"], workload, ours)
    assert len(ours(out)) == 1, (window, out)
    assert all(line.endswith(" sync()") for line in out.splitlines()[1:])
