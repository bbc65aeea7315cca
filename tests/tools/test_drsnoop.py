"""drsnoop: the C it builds for its options, and live runs that load and attach it with every option
and stop after -d seconds.

Direct reclaim itself is not caused here: it happens only when the whole machine runs short of free
pages (a memory cgroup at its limit reclaims through vmscan:mm_vmscan_memcg_reclaim_*, not the
direct-reclaim tracepoints drsnoop reads), and exhausting this shared machine's memory is neither safe
nor quick."""

from __future__ import annotations

import os
import time

import pytest
from _toolcheck import run_rbcc

from rbcc.tools import drsnoop


def _args(*argv: str):  # noqa: ANN202
    return drsnoop.build_parser().parse_args(list(argv))


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = drsnoop.bpf_text(_args())
    assert "if (0 || 0)" in plain and "if (0)   //" in plain
    assert "if (pid != 181 || 0)" in drsnoop.bpf_text(_args("-p", "181"))
    # a TID wins over a PID
    assert "if (tid != 7 || uid != 1000)" in drsnoop.bpf_text(_args("-p", "181", "-t", "7", "-u", "1000"))
    assert "(const void *)0xffffffff81234560ULL" in drsnoop.bpf_text(_args("-v"), 0xFFFFFFFF81234560)


def test_header_follows_the_options() -> None:
    assert drsnoop.header(_args()).split() == ["COMM", "PID", "LAT(ms)", "PAGES"]
    assert drsnoop.header(_args("-T", "-U", "-t", "1", "-v")).split() == [
        "TIME(s)",
        "UID",
        "COMM",
        "TID",
        "LAT(ms)",
        "PAGES",
        "FREE(KB)",
    ]


@pytest.mark.needs_root
@pytest.mark.parametrize("argv", [["-T", "-U", "-v"], ["-p", str(os.getpid()), "-u", "0", "-n", "python"], ["-t", "1"]])
def test_attaches_and_stops_after_its_duration(argv: list[str]) -> None:
    began = time.monotonic()
    done = run_rbcc("tool", "drsnoop", "-d", "1", *argv)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.splitlines()[0] == drsnoop.header(_args(*argv))
    assert time.monotonic() - began >= 1
