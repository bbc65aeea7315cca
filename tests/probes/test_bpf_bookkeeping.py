"""bcc's bookkeeping of what is attached: ``num_open_kprobes/uprobes/tracepoints`` per BPF object (probe
points, as bcc counts them), ``rbcc._get_num_open_probes()`` over the process, the per-kind dicts
(``tracepoint_fds``, ``uprobe_fds``, ...), ``TRACEFS``/``DEBUGFS``, and ``close()``, which keeps what is
attached attached, as bcc's does."""

from __future__ import annotations

import gc
import os

import pytest
from _bpfutil import target_cflags

import rbcc
from rbcc import BPF

pytestmark = pytest.mark.needs_root

PROBES = r"""
BPF_ARRAY(hits, u64, 2);

int on_tp(void *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        hits.increment(0);
    return 0;
}

int on_other_tp(void *ctx) { return 0; }

int on_uprobe(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        hits.increment(1);
    return 0;
}
"""


def test_tracefs_is_where_tracefs_is_mounted() -> None:
    from rbcc import TRACEFS  # bcc scripts import it; rbcc mounts tracefs on first use if it must

    assert os.path.isdir(os.path.join(TRACEFS, "events", "syscalls"))
    assert rbcc.TRACEFS == TRACEFS
    assert rbcc.DEBUGFS == "/sys/kernel/debug"


def test_counts_are_of_probe_points_as_bcc_keeps_them() -> None:
    with BPF(text=PROBES, cflags=target_cflags()) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_tp")
        # a second function on the same tracepoint: bcc's dict has the tracepoint once
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_other_tp")
        b.attach_uprobe(name="c", sym="getpid", fn_name="on_uprobe")
        b.attach_uretprobe(name="c", sym="getpid", fn_name="on_uprobe")
        assert (b.num_open_kprobes(), b.num_open_uprobes(), b.num_open_tracepoints()) == (0, 2, 1)
        os.getppid()
        os.getpid()
        assert b["hits"][0].value >= 1 and b["hits"][1].value >= 2  # entry and return
        assert list(b.tracepoint_fds) == [b"syscalls:sys_enter_getppid"]
        assert len(b.tracepoint_fds[b"syscalls:sys_enter_getppid"]) == 2  # both attachments
        assert sorted(k[:2] for k in b.uprobe_fds) == [b"p_", b"r_"]
        assert all(k.endswith(b":getpid") for k in b.uprobe_fds)
        assert b.kprobe_fds == {} and b.raw_tracepoint_fds == {} and b.lsm_fds == {}


def test_the_process_count_is_every_objects_kprobes_and_uprobes() -> None:
    before = rbcc._get_num_open_probes()
    first = BPF(text=PROBES, cflags=target_cflags())
    second = BPF(text=PROBES, cflags=target_cflags())
    try:
        first.attach_uprobe(name="c", sym="getpid", fn_name="on_uprobe")
        second.attach_uprobe(name="c", sym="getppid", fn_name="on_uprobe")
        second.attach_uretprobe(name="c", sym="getppid", fn_name="on_uprobe")
        second.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_tp")  # not a k/uprobe
        assert rbcc._get_num_open_probes() == before + 3
        second.detach_uretprobe(name="c", sym="getppid")
        assert rbcc._get_num_open_probes() == before + 2
    finally:
        first.cleanup()
        second.cleanup()
    assert rbcc._get_num_open_probes() == before
    del first, second
    gc.collect()
    assert rbcc._get_num_open_probes() == before


def test_close_keeps_probes_attached_until_cleanup() -> None:
    b = BPF(text=PROBES, cflags=target_cflags())
    b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_tp")
    hits = b._loaded().map("hits")  # a map handle has its own fd: it outlives close()
    b.close()
    os.getppid()
    assert int.from_bytes(hits.lookup((0).to_bytes(4, "little")) or b"", "little") >= 1
    assert b.num_open_tracepoints() == 1
    with pytest.raises(rbcc.BPFError, match="cleaned up"):
        b["hits"]
    b.cleanup()
    assert b.num_open_tracepoints() == 0


def test_perf_events_and_tables_by_name() -> None:
    from rbcc import PerfSWConfig, PerfType

    text = PROBES + "int on_clock(struct bpf_perf_event_data *ctx) { return 0; }"
    with BPF(text=text, cflags=target_cflags()) as b:
        b.attach_perf_event(ev_type=PerfType.SOFTWARE, ev_config=PerfSWConfig.CPU_CLOCK, fn_name="on_clock",
                            sample_freq=10)  # fmt: skip
        assert list(b.open_perf_events) == [(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK)]
        assert len(b.open_perf_events[(1, 0)]) == len(rbcc.get_online_cpus())
        hits = b["hits"]
        assert b.tables == {"hits": hits}
        assert b.tracefile is None
        b.trace_open(nonblocking=True)
        assert b.tracefile is not None and b.tracefile.name.endswith("trace_pipe")
