"""Perf events from a whole ``perf_event_attr``: ``Perf.perf_event_attr`` laid out as the kernel's struct,
``BPF.attach_perf_event_raw`` attaching a PERF_EVENT program to the event it describes (software
cpu-clock sampling here: this machine has no hardware counters), ``Perf.perf_event_open``."""

from __future__ import annotations

import ctypes
import os
import time

import pytest
from _bpfutil import target_cflags

import rbcc
from rbcc import BPF, Perf, PerfEventSampleFormat, PerfHWConfig, PerfSWConfig, PerfType

SAMPLER = r"""
BPF_ARRAY(samples, u64, 1);
BPF_ARRAY(mine, u64, 1);
BPF_ARRAY(cookie, u64, 1);

int on_sample(struct bpf_perf_event_data *ctx) {
    samples.increment(0);
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        mine.increment(0);
    int zero = 0;
    u64 c = bpf_get_attach_cookie(ctx);
    cookie.update(&zero, &c);
    return 0;
}
"""


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _clock(**fields: int) -> ctypes.Structure:
    attr = Perf.perf_event_attr()
    attr.type = PerfType.SOFTWARE
    attr.config = PerfSWConfig.CPU_CLOCK
    for name, value in fields.items():
        setattr(attr, name, value)
    return attr


def test_perf_event_attr_is_the_kernels_layout() -> None:
    attr = Perf.perf_event_attr()
    # PERF_ATTR_SIZE_VER8, each field where linux/perf_event.h puts it
    assert ctypes.sizeof(attr) == attr.size == 136
    offsets = (
        ("config", 8), ("sample_period", 16), ("sample_type", 24), ("read_format", 32), ("wakeup_events", 48),
        ("bp_type", 52), ("config1", 56), ("config2", 64), ("branch_sample_type", 72), ("sample_stack_user", 88),
        ("clockid", 92), ("aux_watermark", 104), ("sample_max_stack", 108), ("sig_data", 120), ("config3", 128),
    )  # fmt: skip
    for name, offset in offsets:
        assert getattr(type(attr), name).offset == offset, name
    # the flag bits after read_format: disabled is bit 0, freq bit 10, precise_ip bits 15-16, sigtrap bit 37
    attr.disabled, attr.freq, attr.precise_ip, attr.sigtrap = 1, 1, 3, 1
    assert int.from_bytes(bytes(attr)[40:48], "little") == 1 | 1 << 10 | 3 << 15 | 1 << 37
    # the unions' names share their storage, as the kernel's
    attr.sample_freq = 99
    assert attr.sample_period == 99
    attr.config1 = 7
    assert attr.kprobe_func == attr.bp_addr == 7


def test_setting_a_name_that_is_not_a_field_is_refused() -> None:
    # bcc only warned: the value would silently never reach perf_event_open
    attr = Perf.perf_event_attr()
    with pytest.raises(AttributeError, match=r"no field 'pid'.*sample_freq"):
        attr.pid = 5
    assert "sample_period" in attr.ctype_fields and "wakeup_events" in attr.ctype_fields


def test_sample_format_bits_are_the_kernels() -> None:
    assert PerfEventSampleFormat.RAW == 1 << 10 and PerfEventSampleFormat.WEIGHT_STRUCT == 1 << 24
    assert Perf.PERF_SAMPLE_RAW == PerfEventSampleFormat.RAW and Perf.PERF_TYPE_TRACEPOINT == 2


@pytest.mark.needs_root
def test_attach_perf_event_raw_runs_the_program_for_each_sample() -> None:
    with BPF(text=SAMPLER, cflags=target_cflags()) as b:
        b.attach_perf_event_raw(attr=_clock(sample_freq=1000, freq=1), fn_name="on_sample", cookie=0xC0FFEE)
        assert list(b.open_perf_events) == [(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK)]
        _spin(0.5)
        mine = b["mine"][0].value
        # about 500 samples of this busy CPU at 1000 Hz; the timer's slack and a loaded machine allow less
        assert 100 <= mine <= 700, mine
        assert b["samples"][0].value >= mine
        assert b["cookie"][0].value == 0xC0FFEE  # rbcc's cookie=, what bpf_get_attach_cookie() returns
        b.detach_perf_event(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK)
        stopped = b["samples"][0].value
        _spin(0.2)
        assert b["samples"][0].value == stopped
        assert b.open_perf_events == {}


@pytest.mark.needs_root
def test_a_raw_event_of_one_process_on_one_cpu_by_period() -> None:
    with BPF(text=SAMPLER, cflags=target_cflags()) as b:
        os.sched_setaffinity(0, {0})
        try:
            # every 2 ms of this process's time on CPU 0 (sample_period, no freq: counted in ns)
            b.attach_perf_event_raw(attr=_clock(sample_period=2_000_000), fn_name="on_sample", pid=os.getpid(),
                                    cpu=0)  # fmt: skip
            # 0.3 s of this process's own CPU time: on a busy machine the wall clock would give it less
            end, deadline = time.process_time() + 0.3, time.monotonic() + 10
            while time.process_time() < end and time.monotonic() < deadline:
                pass
        finally:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        mine = b["mine"][0].value
        assert 50 <= mine <= 160, mine
        # only this process is sampled; a sample as it is switched out may see the next task current
        assert 0 <= b["samples"][0].value - mine <= 3
        assert len(b.open_perf_events[(1, 0)]) == 1


@pytest.mark.needs_root
def test_an_attr_that_would_overrun_is_refused() -> None:
    with BPF(text=SAMPLER, cflags=target_cflags()) as b:
        attr = _clock(sample_freq=10, freq=1)
        attr.size = 4096  # the kernel would read 4 KiB from a 136-byte struct
        with pytest.raises(ValueError, match="perf_event_attr.size is 4096"):
            b.attach_perf_event_raw(attr=attr, fn_name="on_sample", cpu=0)
        with pytest.raises(TypeError, match="Perf.perf_event_attr"):
            b.attach_perf_event_raw(attr=-1, fn_name="on_sample")


@pytest.mark.needs_root
def test_a_hardware_event_where_the_machine_has_none() -> None:
    attr = Perf.perf_event_attr()
    attr.type, attr.config, attr.sample_period = PerfType.HARDWARE, PerfHWConfig.CPU_CYCLES, 1_000_000
    with BPF(text=SAMPLER, cflags=target_cflags()) as b:
        if os.path.exists("/sys/bus/event_source/devices/cpu"):
            b.attach_perf_event_raw(attr=attr, fn_name="on_sample", cpu=0)  # counters there: it attaches
            return
        with pytest.raises(rbcc.KernelFeatureError) as info:
            b.attach_perf_event_raw(attr=attr, fn_name="on_sample", cpu=0)
        assert "software event" in info.value.alternative


@pytest.mark.needs_root
def test_perf_event_open_opens_an_enabled_event_on_each_cpu() -> None:
    with open(os.path.join(rbcc.TRACEFS, "events/syscalls/sys_enter_getppid/id")) as f:
        tracepoint_id = int(f.read())
    before = len(Perf._opened)
    Perf.perf_event_open(tracepoint_id)
    opened = Perf._opened[before:]
    try:
        assert len(opened) == len(rbcc.get_online_cpus())
        for fd in opened:
            assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]"
    finally:
        for fd in opened:
            os.close(fd)
        del Perf._opened[before:]
