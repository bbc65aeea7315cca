"""perf_event_open's numbers and its attribute struct (the kernel's perf_event.h ABI), under bcc's names:
``PerfType``, ``PerfHWConfig``, ``PerfSWConfig``, ``PerfEventSampleFormat`` and ``Perf`` with its
``perf_event_attr`` (what ``BPF.attach_perf_event_raw`` takes)."""

from __future__ import annotations

import ctypes as ct
import fcntl
import os
import platform
from enum import IntEnum
from typing import Any, ClassVar

from .utils import get_online_cpus

__all__ = ["Perf", "PerfEventSampleFormat", "PerfHWConfig", "PerfSWConfig", "PerfType"]


class PerfType(IntEnum):
    HARDWARE = 0
    SOFTWARE = 1
    TRACEPOINT = 2
    HW_CACHE = 3
    RAW = 4
    BREAKPOINT = 5


class PerfHWConfig(IntEnum):
    CPU_CYCLES = 0
    INSTRUCTIONS = 1
    CACHE_REFERENCES = 2
    CACHE_MISSES = 3
    BRANCH_INSTRUCTIONS = 4
    BRANCH_MISSES = 5
    BUS_CYCLES = 6
    STALLED_CYCLES_FRONTEND = 7
    STALLED_CYCLES_BACKEND = 8
    REF_CPU_CYCLES = 9


class PerfSWConfig(IntEnum):
    CPU_CLOCK = 0
    TASK_CLOCK = 1
    PAGE_FAULTS = 2
    CONTEXT_SWITCHES = 3
    CPU_MIGRATIONS = 4
    PAGE_FAULTS_MIN = 5
    PAGE_FAULTS_MAJ = 6
    ALIGNMENT_FAULTS = 7
    EMULATION_FAULTS = 8
    DUMMY = 9
    BPF_OUTPUT = 10


class PerfEventSampleFormat(IntEnum):
    """``enum perf_event_sample_format``: the bits of ``perf_event_attr.sample_type``."""

    IP = 1 << 0
    TID = 1 << 1
    TIME = 1 << 2
    ADDR = 1 << 3
    READ = 1 << 4
    CALLCHAIN = 1 << 5
    ID = 1 << 6
    CPU = 1 << 7
    PERIOD = 1 << 8
    STREAM_ID = 1 << 9
    RAW = 1 << 10
    BRANCH_STACK = 1 << 11
    REGS_USER = 1 << 12
    STACK_USER = 1 << 13
    WEIGHT = 1 << 14
    DATA_SRC = 1 << 15
    IDENTIFIER = 1 << 16
    TRANSACTION = 1 << 17
    REGS_INTR = 1 << 18
    PHYS_ADDR = 1 << 19
    AUX = 1 << 20
    CGROUP = 1 << 21
    DATA_PAGE_SIZE = 1 << 22
    CODE_PAGE_SIZE = 1 << 23
    WEIGHT_STRUCT = 1 << 24


# the unions of struct perf_event_attr, each one u64 (or u32) read by the kernel under several names
class _Sample(ct.Union):
    _fields_ = [("sample_period", ct.c_uint64), ("sample_freq", ct.c_uint64)]


class _Wakeup(ct.Union):
    _fields_ = [("wakeup_events", ct.c_uint32), ("wakeup_watermark", ct.c_uint32)]


class _Config1(ct.Union):
    _fields_ = [
        ("bp_addr", ct.c_uint64),
        ("kprobe_func", ct.c_uint64),
        ("uprobe_path", ct.c_uint64),
        ("config1", ct.c_uint64),
    ]


class _Config2(ct.Union):
    _fields_ = [
        ("bp_len", ct.c_uint64),
        ("kprobe_addr", ct.c_uint64),
        ("probe_offset", ct.c_uint64),
        ("config2", ct.c_uint64),
    ]


# the one-bit flags after read_format, in the kernel's order (precise_ip takes two bits)
_FLAG_BITS = (
    "disabled inherit pinned exclusive exclude_user exclude_kernel exclude_hv exclude_idle mmap comm freq "
    "inherit_stat enable_on_exec task watermark precise_ip mmap_data sample_id_all exclude_host exclude_guest "
    "exclude_callchain_kernel exclude_callchain_user mmap2 comm_exec use_clockid context_switch write_backward "
    "namespaces ksymbol bpf_event aux_output cgroup text_poke build_id inherit_thread remove_on_exec sigtrap"
).split()


class _PerfEventAttr(ct.Structure):
    """``struct perf_event_attr`` as the kernel lays it out (PERF_ATTR_SIZE_VER8, 136 bytes; a kernel that
    knows a shorter one takes it as long as the fields it lacks are zero). ``size`` is filled in; the
    unions' members are fields of their own (``attr.sample_freq``, ``attr.config1``), as in bcc.
    Setting a name that is not a field raises AttributeError: bcc only warned, and the value never
    reached the kernel."""

    _anonymous_ = ("_sample", "_wakeup", "_config1", "_config2")
    _fields_ = [
        ("type", ct.c_uint32),
        ("size", ct.c_uint32),
        ("config", ct.c_uint64),
        ("_sample", _Sample),
        ("sample_type", ct.c_uint64),
        ("read_format", ct.c_uint64),
        *[(name, ct.c_uint64, 2 if name == "precise_ip" else 1) for name in _FLAG_BITS],
        ("__reserved_1", ct.c_uint64, 64 - len(_FLAG_BITS) - 1),
        ("_wakeup", _Wakeup),
        ("bp_type", ct.c_uint32),
        ("_config1", _Config1),
        ("_config2", _Config2),
        ("branch_sample_type", ct.c_uint64),
        ("sample_regs_user", ct.c_uint64),
        ("sample_stack_user", ct.c_uint32),
        ("clockid", ct.c_int32),
        ("sample_regs_intr", ct.c_uint64),
        ("aux_watermark", ct.c_uint32),
        ("sample_max_stack", ct.c_uint16),
        ("__reserved_2", ct.c_uint16),
        ("aux_sample_size", ct.c_uint32),
        ("__reserved_3", ct.c_uint32),
        ("sig_data", ct.c_uint64),
        ("config3", ct.c_uint64),
    ]

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        self.size = ct.sizeof(self)

    @property
    def ctype_fields(self) -> list[str]:
        """Every name a value can be set under (bcc's list of them)."""
        names = [f[0] for f in self._fields_ if not f[0].startswith("_")]
        for union in (_Sample, _Wakeup, _Config1, _Config2):
            names += [f[0] for f in union._fields_]
        return names

    def __setattr__(self, key: str, value: Any) -> None:
        if not hasattr(type(self), key):
            raise AttributeError(
                f"perf_event_attr has no field {key!r}: it would never reach perf_event_open "
                f"(fields: {', '.join(self.ctype_fields)})"
            )
        super().__setattr__(key, value)


# perf_event_open's syscall number, for ctypes callers of Perf.syscall
_NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "riscv64": 241, "ppc64le": 319, "s390x": 331}


class Perf:
    """bcc's perf_event_open helpers: the attribute struct, a few perf_event.h numbers, and
    ``perf_event_open``, which opens and enables an event on every online CPU."""

    perf_event_attr = _PerfEventAttr

    NR_PERF_EVENT_OPEN = _NR_PERF_EVENT_OPEN.get(platform.machine(), 298)

    PERF_TYPE_HARDWARE = PerfType.HARDWARE
    PERF_TYPE_SOFTWARE = PerfType.SOFTWARE
    PERF_TYPE_TRACEPOINT = PerfType.TRACEPOINT
    PERF_TYPE_HW_CACHE = PerfType.HW_CACHE

    PERF_SAMPLE_RAW = PerfEventSampleFormat.RAW

    PERF_FLAG_FD_CLOEXEC = 8
    PERF_EVENT_IOC_SET_FILTER = 0x40082406  # _IOW('$', 6, char *)
    PERF_EVENT_IOC_ENABLE = 0x2400  # _IO('$', 0)

    # libc through ctypes, as bcc has them here (scripts call Perf.syscall(Perf.NR_PERF_EVENT_OPEN, ...))
    libc = ct.CDLL(None, use_errno=True)
    syscall = libc.syscall
    ioctl = libc.ioctl

    # what perf_event_open opened: bcc never closes these events, nor returns them; they stay open
    # for the life of the process here too
    _opened: ClassVar[list[int]] = []

    @staticmethod
    def _open_for_cpu(cpu: int, attr: _PerfEventAttr, pid: int = -1) -> int:
        from . import _core

        fd = _core.perf_event_open_raw(bytes(attr), pid, cpu, -1)
        try:
            if attr.type == PerfType.TRACEPOINT:
                # records nothing (no process has that pid): bcc opens tracepoints this way to enable
                # them, reading nothing from their buffers
                fcntl.ioctl(fd, Perf.PERF_EVENT_IOC_SET_FILTER, b"common_pid == -17\0")
            fcntl.ioctl(fd, Perf.PERF_EVENT_IOC_ENABLE, 0)
        except OSError:
            os.close(fd)
            raise
        Perf._opened.append(fd)
        return fd

    @staticmethod
    def perf_event_open(tpoint_id: int, pid: int = -1, ptype: int = PerfType.TRACEPOINT, freq: int = 0) -> None:
        """Open and enable event ``tpoint_id`` (a config number of type ``ptype``) on every online CPU,
        sampling ``freq`` times a second if given, else every event."""
        attr = _PerfEventAttr(type=ptype, config=tpoint_id, sample_type=PerfEventSampleFormat.RAW)
        if freq > 0:
            attr.freq = 1
            attr.sample_freq = freq
        else:
            attr.sample_period = 1
        attr.wakeup_events = 9999999  # never wake a reader: there is none
        for cpu in get_online_cpus():
            Perf._open_for_cpu(cpu, attr, pid)
