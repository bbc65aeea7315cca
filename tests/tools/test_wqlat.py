"""wqlat: the C for its options, and a live run where this test holds a work item queued on the
"events" workqueue for 200 ms (a real-time thread keeps the CPU of its worker busy meanwhile): it
lands in the histogram's 128 -> 255 msecs slot."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from _bpfutil import pinned_to_one_cpu, run_interrupted, two_cpus
from _toolcheck import text_of

from rbcc._tools import sched
from rbcc.tools import wqlat


def test_units_keys_and_name_filter() -> None:
    text = text_of(wqlat)
    assert "delta /= 1000;" in text and "BPF_HISTOGRAM(dist);" in text and "q.name[" not in text
    assert "delta /= 1000000;" in text_of(wqlat, "-m")
    assert "delta /=" not in text_of(wqlat, "-N")
    per_wq = text_of(wqlat, "-W", "-w", "ev")
    assert "BPF_HISTOGRAM(dist, struct wq_key_t);" in per_wq
    assert "if (q.name[0] != 101 || q.name[1] != 118 || q.name[2] != 0)" in per_wq


def test_refuses_a_name_too_long() -> None:
    with pytest.raises(SystemExit):
        wqlat.main(["-w", "x" * 24])


# Spins on one CPU as a real-time thread for 0.2 s, once it has said so.
SPINNER = r"""
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
print("spinning", flush=True)
end = time.monotonic() + 0.2
while time.monotonic() < end:
    pass
"""


def _held_work(cpu: int, spinner_cpu: int) -> None:
    """Queue work on every CPU's "events" worker (vm.stat_refresh does, and waits for it) while the
    spinner holds ``spinner_cpu``: that CPU's work waits until it stops."""
    with pinned_to_one_cpu(cpu):
        spinner = subprocess.Popen([sys.executable, "-c", SPINNER, str(spinner_cpu)], stdout=subprocess.PIPE, text=True)
        assert spinner.stdout is not None and spinner.stdout.readline() == "spinning\n"
        with open("/proc/sys/vm/stat_refresh", "w") as f:
            f.write("1")
        assert spinner.wait(timeout=30) == 0


@pytest.mark.needs_root
def test_a_work_item_held_200ms_lands_in_its_slot() -> None:
    if not os.path.exists("/proc/sys/vm/stat_refresh"):
        pytest.skip("no /proc/sys/vm/stat_refresh: nothing here queues work on every CPU on demand")
    cpu, other = two_cpus()
    out, _ = run_interrupted(
        ["tool", "wqlat", "-m", "-w", "events"],
        lambda h: h.startswith("Tracing work queue request latency"),
        lambda: _held_work(cpu, other),
    )
    slots = [(int(m.group(1)), int(m.group(3))) for m in map(sched.HIST_LINE.match, out.splitlines()) if m]
    assert "msecs" in out and slots, out
    # the work queued on the spinner's CPU waited for it: a little less than 200 ms (it was queued
    # once the spinner ran), 128 -> 255 msecs; a slow machine (an emulated VM) takes longer to run
    # the worker once the CPU is free, so the slot above is taken too, none further
    assert sum(count for low, count in slots if low in (128, 256)) >= 1, out
    assert not [low for low, count in slots if count and low >= 512], out
