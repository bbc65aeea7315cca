"""rbcc._tools.proc, what the process and syscall tools share: task id conditions and the syscalls present."""

from __future__ import annotations

import pytest

from rbcc._tools import proc


def test_skip_condition_for_the_ids_given() -> None:
    assert proc.skip_condition() == "0"
    assert proc.skip_condition(pid=181) == "pid != 181"
    assert proc.skip_condition(pid=181, tid=7) == "tid != 7"  # a TID trumps a PID, as in bcc
    assert proc.skip_condition(pid=181, uid=1000) == "pid != 181 || uid != 1000"
    assert proc.skip_condition(pid=0) == "pid != 0"  # 0 is an id, not "no filter"


def test_task_ids_declares_what_the_condition_reads() -> None:
    for name in ("id", "pid", "tid", "uid"):
        assert f" {name} = " in proc.TASK_IDS


@pytest.mark.needs_root
def test_syscalls_present_keeps_the_order_and_drops_the_missing() -> None:
    assert proc.syscalls_present(["openat", "no_such_call", "kill"]) == ["openat", "kill"]
    assert proc.syscalls_present([]) == []
