"""rbcc.trace and rbcc.argdist: the multi-tools as data for notebooks, on the test's own syscalls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import rbcc
from rbcc.errors import ProbeSpecError

pytestmark = pytest.mark.needs_root


def test_trace_returns_the_events_as_dicts(tmp_path: Path) -> None:
    target = tmp_path / f"rbcc-api-{os.getpid()}"

    def workload() -> None:
        target.write_text("x")
        os.getppid()

    events = rbcc.trace(
        't:syscalls:sys_enter_openat "%s %d", args->filename, args->flags',
        "t:syscalls:sys_enter_getppid",
        pid=os.getpid(),
        during=workload,
        duration=5,
    )
    opens = [e for e in events if e["function"] == "sys_enter_openat" and e["values"][0] == str(target)]
    assert len(opens) == 1, events
    (e,) = opens
    assert (e["pid"], e["tid"]) == (os.getpid(), os.getpid()) and e["uid"] == os.getuid()
    assert e["values"][1] & os.O_WRONLY and e["message"] == f"{target} {e['values'][1]}"
    assert e["probe"] == 't:syscalls:sys_enter_openat "%s %d", args->filename, args->flags'
    assert 0 <= e["timestamp"] < 10 and isinstance(e["cpu"], int) and e["comm"]
    getppid = [e for e in events if e["function"] == "sys_enter_getppid"]
    assert len(getppid) == 1 and getppid[0]["message"] == ""


def test_trace_stops_after_max_events() -> None:
    def workload() -> None:
        for _ in range(10):
            os.getppid()

    events = rbcc.trace("t:syscalls:sys_enter_getppid", pid=os.getpid(), during=workload, max_events=4)
    assert len(events) == 4 and all(e["pid"] == os.getpid() for e in events)


def test_argdist_returns_histograms_and_counts() -> None:
    def workload() -> None:
        fd = os.open("/dev/zero", os.O_RDONLY)
        for size in (100, 100, 5000):
            os.read(fd, size)
        os.close(fd)
        for _ in range(3):
            os.getppid()

    read = "t:syscalls:sys_enter_read():u64:args->count:args->count == 100 || args->count == 5000"
    result = rbcc.argdist(
        hist=read,
        count=["t:syscalls:sys_enter_getppid()#getppid",
               "t:syscalls:sys_enter_read():u64,int:args->count,$PID:args->count == 5000"],
        pid=os.getpid(),
        during=workload,
    )  # fmt: skip
    assert result[read] == {64: 2, 4096: 1}
    assert result["getppid"] == {"total calls": 3}
    assert list(result.values())[1] == {(5000, os.getpid()): 1}


def test_bad_specs_raise_probe_spec_errors() -> None:
    with pytest.raises(ProbeSpecError) as info:
        rbcc.trace('t:syscalls:sys_enter_getppid "%d"', duration=1)
    assert info.value.position == 30
    with pytest.raises(ProbeSpecError):
        rbcc.argdist(hist="t:syscalls:sys_enter_getppid()", duration=1)


def test_clang_errors_come_back_as_probe_spec_errors() -> None:
    count = "t:syscalls:sys_enter_read():u64:args->count:args->fdx == 1"
    with pytest.raises(ProbeSpecError) as info:
        rbcc.argdist(count=count, duration=1)
    assert info.value.position == count.index("fdx") and info.value.reason.startswith("clang: no member named 'fdx'")
    spec = 't:syscalls:sys_enter_getppid "%d", args->nope + 1'
    with pytest.raises(ProbeSpecError) as info:
        rbcc.trace(spec, duration=1)
    assert info.value.position == spec.index("nope") and info.value.spec == spec
