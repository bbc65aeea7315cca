"""The scheduler/CPU/IRQ tools' shared pieces (rbcc._tools.sched and rbcc._tools.sched_stacks), and what every
one of those tools does alike: a summary line, and --ebpf printing the C without loading it."""

from __future__ import annotations

import argparse
import errno
import os

import pytest
from _toolcheck import run_rbcc

from rbcc import tools
from rbcc._tools import sched, sched_stacks

TOOLS = {
    "runqlat": "on_switch",
    "runqlen": "do_perf_event",
    "runqslower": "on_switch",
    "cpudist": "on_switch",
    "profile": "do_perf_event",
    "offcputime": "on_switch",
    "wakeuptime": "on_wakeup",
    "hardirqs": "irq_handler_entry",
    "softirqs": "softirq_entry",
    "cpuunclaimed": "do_perf_event",
    "llcstat": "on_cache_miss",
}


def test_hist_total_adds_every_row() -> None:
    text = """
     usecs               : count     distribution
         0 -> 1          : 3        |****                                    |
         2 -> 3          : 0        |                                        |
      4096 -> 8191       : 30       |****************************************|
"""
    assert sched.hist_total(text) == 33
    assert sched.hist_total("no histogram here") == 0


def test_storage_per_process_thread_or_namespace() -> None:
    ns = argparse.Namespace
    assert sched.hist_storage(ns(pids=False, tids=False, pidnss=False))[2] == ""
    assert ".id = tgid" in sched.hist_storage(ns(pids=True, tids=False))[1]
    assert sched.hist_storage(ns(pids=False, tids=True))[2] == "tid"
    assert sched.hist_storage(ns(pids=False, tids=False, pidnss=True))[2] == "pidns"
    assert sched.units(True) == ("delta /= 1000000;", "msecs") and sched.units(False)[1] == "usecs"


def test_task_state_field_is_the_kernels() -> None:
    assert sched.task_state_field() in ("__state", "state")


def test_comm_of_a_live_and_a_gone_process() -> None:
    with open("/proc/self/comm") as f:
        assert sched.comm_of(os.getpid()) == f"{os.getpid()} {f.read()}"
    assert sched.comm_of(2**22 + 1) == str(2**22 + 1)


def test_stack_getters_and_failed_ids() -> None:
    ns = argparse.Namespace
    assert sched_stacks.stack_getters(ns(user_stacks_only=True), "ctx") == (
        "-1",
        "stack_traces.get_stackid(ctx, BPF_F_USER_STACK)",
    )
    assert sched_stacks.stack_getters(ns(kernel_stacks_only=True), "ctx")[1] == "-1"
    assert sched_stacks.stack_context(ns()) == "user + kernel"
    # -EFAULT: no such stack (a kernel thread's user stack), not a lost one
    assert not sched_stacks.stack_id_err(-errno.EFAULT) and sched_stacks.stack_id_err(-errno.EEXIST)
    assert sched_stacks.folded_frames([b"inner", b"outer"], 3, "[Missed]") == ["outer", "inner"]
    assert sched_stacks.folded_frames([], -errno.ENOMEM, "[Missed]") == ["[Missed]"]
    assert sched_stacks.folded_frames([], -errno.EFAULT, "[Missed]") == []


def test_missing_stacks_warning(capsys: pytest.CaptureFixture[str]) -> None:
    missing = sched_stacks.Missing(hint_errno=errno.ENOMEM)
    for stack_id in (5, -errno.EFAULT, -errno.ENOMEM, -errno.EEXIST):
        missing.check(stack_id)
    missing.warn("lost and could not be displayed")
    assert capsys.readouterr().err == (
        "WARNING: 2 stack traces lost and could not be displayed. Consider increasing --stack-storage-size.\n"
    )


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_listed_with_a_summary(name: str) -> None:
    assert name in tools.names()
    assert tools.summary(name).startswith(f"{name}: ")


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_ebpf_prints_the_program_and_loads_nothing(name: str) -> None:
    out = run_rbcc("tool", name, "--ebpf")
    assert out.returncode == 0, out.stderr
    assert TOOLS[name] in out.stdout and "BPF_" in out.stdout, out.stdout
