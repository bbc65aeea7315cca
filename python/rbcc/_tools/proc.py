"""What the process and syscall tools (exitsnoop ... capable) share: which syscall tracepoints this
kernel has, and C conditions on the current task's ids built from bcc's -p/-t/-u options."""

from __future__ import annotations

from collections.abc import Iterable

from .. import BPF


def syscalls_present(names: Iterable[str]) -> list[str]:
    """The syscalls of ``names`` (in order) that have a sys_enter_ tracepoint on this kernel: a tool
    probes each one it can, as bcc's tools skip a syscall the kernel lacks (openat2 before 5.6, ...)."""
    return [n for n in names if BPF.tracepoint_exists("syscalls", f"sys_enter_{n}")]


def skip_condition(*, pid: int | None = None, tid: int | None = None, uid: int | None = None) -> str:
    """A C condition, true for events to skip, on locals ``pid``, ``tid`` and ``uid`` of the probe.
    A TID trumps a PID, as in bcc."""
    parts = []
    if tid is not None:
        parts.append(f"tid != {int(tid)}")
    elif pid is not None:
        parts.append(f"pid != {int(pid)}")
    if uid is not None:
        parts.append(f"uid != {int(uid)}")
    return " || ".join(parts) or "0"


# The ids a probe's skip_condition() reads, from the current task.
TASK_IDS = """
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    u32 tid = (u32)id;
    u32 uid = (u32)bpf_get_current_uid_gid();
"""


def meminfo_mb(*names: str) -> list[float]:
    """The /proc/meminfo figures ``names`` (Buffers, Cached, ...) in MiB, 0 for one the kernel lacks."""
    kb = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            kb[name] = int(rest.split()[0])
    return [kb.get(n, 0) / 1024 for n in names]


class RelativeTime:
    """bcc's TIME(s) column of shmsnoop and sofdsnoop (-T): an event's ``ts`` less the first one's,
    divided by 1e6 as bcc divides it (so the figure is in milliseconds, whatever the header says); an
    empty column without -T. The tool says which event is the first by when it calls :meth:`column`."""

    def __init__(self, shown: bool) -> None:
        self.shown = shown
        self.first: int | None = None

    def header(self) -> str:
        return "%-14s" % "TIME(s)" if self.shown else ""

    def column(self, ts: int) -> str:
        if self.first is None:
            self.first = ts
        return "%-14.9f" % ((ts - self.first) / 1e6) if self.shown else ""
