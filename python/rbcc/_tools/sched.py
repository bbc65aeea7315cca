"""What the scheduler, CPU and IRQ tools share: bcc's ``interval count`` arguments, the per-PID/TID
histogram keys, the loop that prints a histogram each interval, and the bits of C that read a task.

The scheduler tools hook the ``sched_wakeup``, ``sched_wakeup_new`` and ``sched_switch`` raw
tracepoints, which hand over the task pointers themselves, where bcc falls back to kprobes on
``ttwu_do_wakeup``/``finish_task_switch``: same moments, no kprobe needed.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import BPF
from . import common

FOREVER = 99999999  # bcc's default interval and count: in effect, until Ctrl-C

# The pid namespace of a task: task_active_pid_ns() is pid->numbers[pid->level].ns.
PIDNS_C = r"""
static __always_inline u32 pid_namespace(struct task_struct *task)
{
    struct pid *pid = BPF_CORE_READ(task, thread_pid);
    unsigned int level = BPF_CORE_READ(pid, level);
    struct upid upid = {};
    bpf_probe_read_kernel(&upid, sizeof(upid), &pid->numbers[level]);
    return BPF_CORE_READ(upid.ns, ns.inum);
}
"""

# (raw tracepoint, program) pairs the tools attach
SWITCH = (("sched_switch", "on_switch"),)
RUNQ = (("sched_wakeup", "on_wakeup"), ("sched_wakeup_new", "on_wakeup"), ("sched_switch", "on_switch"))

# What runqlat and runqslower share: ``enqueue(task)`` stamps, in the ``start`` map, when a thread
# began to wait for a CPU unless ``ENQUEUE_SKIP`` (a condition on its ``tgid`` and ``pid``) holds; at a
# wakeup, and at a switch away from a thread still runnable (it was preempted, so it waits from now on).
RUNQ_C = r"""
BPF_HASH(start, u32, u64, 10240);

static __always_inline int enqueue(struct task_struct *p)
{
    u32 tgid = p->tgid, pid = p->pid;
    if (ENQUEUE_SKIP)
        return 0;
    u64 ts = bpf_ktime_get_ns();
    start.update(&pid, &ts);
    return 0;
}

static __always_inline void enqueue_preempted(struct task_struct *prev)
{
    if (prev->STATE_FIELD == TASK_RUNNING)
        enqueue(prev);
}

int on_wakeup(struct bpf_raw_tracepoint_args *ctx)
{
    return enqueue((struct task_struct *)ctx->args[0]);
}
"""

HIST_LINE = re.compile(r"^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|")


def add_interval_count(p: argparse.ArgumentParser) -> None:
    """bcc's optional ``interval`` (seconds) and ``count`` positionals; both default to "forever"."""
    p.add_argument("interval", nargs="?", type=common.positive_int, default=FOREVER, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=common.positive_int, default=FOREVER, help="number of outputs")


def pid_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid PID: {text!r}") from None


@functools.lru_cache(maxsize=1)
def task_state_field() -> str:
    """task_struct's run state: ``__state`` since Linux 5.14, ``state`` before (read from the BTF)."""
    try:
        return "__state" if BPF.kernel_struct_has_field("task_struct", "__state") else "state"
    except Exception:  # no BTF to ask (a build machine): the field of every kernel rbcc supports
        return "__state"


def runq_c(skip: str) -> str:
    """:data:`RUNQ_C` for this kernel, threads for which ``skip`` holds left out."""
    return RUNQ_C.replace("ENQUEUE_SKIP", skip).replace("STATE_FIELD", task_state_field())


def load_attached(args: argparse.Namespace, text: str, probes: Sequence[tuple[str, str]]) -> BPF | None:
    """:func:`common.load`, then each (raw tracepoint, program) of ``probes`` attached; None under
    --ebpf."""
    b = common.load(args, text)
    if b is None:
        return None
    try:
        for tp, fn in probes:
            b.attach_raw_tracepoint(tp=tp, fn_name=fn)
    except BaseException:
        b.cleanup()
        raise
    return b


def units(milliseconds: bool) -> tuple[str, str]:
    """(C that scales ``delta`` from ns, the histogram's label)."""
    return ("delta /= 1000000;", "msecs") if milliseconds else ("delta /= 1000;", "usecs")


def hist_storage(args: argparse.Namespace, *, size: str = "") -> tuple[str, str, str]:
    """(map declaration, C that stores ``delta`` in it, section name) for -P (per process, by ``tgid``),
    -L (per thread, by ``pid``), --pidnss (per PID namespace, of ``task``) or one histogram."""
    extra = f", {size}" if size else ""
    if getattr(args, "pids", False) or getattr(args, "tids", False):
        field, section = ("pid", "tid") if args.tids else ("tgid", "pid")
        return (
            f"BPF_HISTOGRAM(dist, pid_key_t{extra});",
            f"pid_key_t key = {{.id = {field}, .slot = bpf_log2l(delta)}}; dist.increment(key);",
            section,
        )
    if getattr(args, "pidnss", False):
        return (
            f"BPF_HISTOGRAM(dist, pid_key_t{extra});",
            "pid_key_t key = {.id = pid_namespace(task), .slot = bpf_log2l(delta)}; dist.atomic_increment(key);",
            "pidns",
        )
    return "BPF_HISTOGRAM(dist);", "dist.atomic_increment(bpf_log2l(delta));", ""


def comm_of(pid: int) -> str:
    """bcc's section label for a PID: "PID COMM" while the process lives (comm keeps its newline), else
    the PID."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f"{pid} {f.read()}"
    except OSError:
        return str(pid)


def print_intervals(
    args: argparse.Namespace,
    body: Callable[[], None],
    *,
    timestamp: Callable[[], None] | None = None,
    ticks: Iterable[bool] | None = None,
) -> None:
    """Every ``args.interval`` seconds (or at Ctrl-C), a blank line, the time under -T, then ``body()``;
    ``args.count`` times (or as ``ticks`` says: a heatmap's loop, ``pictures.heatmap_intervals``)."""
    for _last in ticks if ticks is not None else common.intervals(args.interval, args.count):
        print()
        if getattr(args, "timestamp", False):
            if timestamp is not None:
                timestamp()
            else:
                print("%-8s\n" % common.strftime_now(), end="")
        body()


def print_dist(b: BPF, label: str, section: str, print_fn: Callable[[Any], Any] = int) -> None:
    """Print and clear the ``dist`` histogram (one section per key under -P/-L/--pidnss)."""
    dist = b["dist"]
    dist.print_log2_hist(label, section, section_print_fn=print_fn)
    dist.clear()


def hist_total(text: str) -> int:
    """The sum of the counts of every log2 histogram row in ``text`` (for tests and scripts)."""
    return sum(int(m.group(3)) for m in map(HIST_LINE.match, text.splitlines()) if m)


def irq_units(counting: bool, nanoseconds: bool) -> tuple[int, str]:
    """hardirqs' and softirqs' (divisor of the nanoseconds measured, label)."""
    if counting:
        return 1, "count"
    if nanoseconds:
        return 1, "nsecs"
    return 1000, "usecs"


def cpu_filter(cpu: int | None) -> str:
    """C that leaves a probe run on another CPU than ``cpu`` (local ``cpu``); nothing when None."""
    return f"if (cpu != {cpu}) {{ return 0; }}" if cpu is not None else ""


def run_irqs(
    args: argparse.Namespace,
    text: str,
    *,
    kind: str,
    counting: bool,
    width: int,
    section_fn: Callable[[Any], str],
    row_name: Callable[[Any], str],
    schedule: argparse.Namespace | None = None,
) -> int:
    """hardirqs' and softirqs' run: each interval (of ``schedule``, else ``args``) the ``dist`` map as
    one histogram per IRQ with -d, else a table of totals, least first; ``kind`` is "hard" or "soft"."""
    b = common.load(args, text)
    if b is None:
        return 0
    with b:
        print("Tracing %s irq event%s... Hit Ctrl-C to end." % (kind, "s" if counting else " time"), flush=True)
        factor, label = irq_units(counting, args.nanoseconds)
        dist = b["dist"]

        def show() -> None:
            if args.dist:
                dist.print_log2_hist(label, kind + "irq", section_print_fn=section_fn)
            else:
                print("%-*s %11s" % (width, kind.upper() + "IRQ", "TOTAL_" + label))
                for k, v in sorted(dist.items(), key=lambda kv: kv[1].value):
                    print("%-*s %11d" % (width, row_name(k), v.value // factor))
            dist.clear()
            sys.stdout.flush()

        print_intervals(schedule or args, show)
    return 0
