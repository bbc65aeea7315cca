"""rbcc.BPF with TRACEPOINT_PROBE on the real kernel: trace_pipe, map counters, args->fields, log2 histograms."""

from __future__ import annotations

import ctypes
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from _bpfutil import poll_until, target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root


@pytest.fixture
def zero_fd() -> Iterator[int]:
    fd = os.open("/dev/zero", os.O_RDONLY)
    yield fd
    os.close(fd)


HELLO = r"""
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    bpf_trace_printk("hello %d\n", pid);
    return 0;
}
"""


def test_hello_world_reaches_trace_fields() -> None:
    me = os.getpid()
    with BPF(text=HELLO, cflags=target_cflags()) as b:
        for _ in range(3):
            os.getppid()
        # trace_pipe is shared by the whole machine: skip other programs' lines (and stale ones).
        found = None
        deadline = time.monotonic() + 3
        while found is None and time.monotonic() < deadline:
            fields = b.trace_fields(nonblocking=True)
            if fields[0] is None:
                time.sleep(0.02)
                continue
            task, pid, cpu, flags, ts, msg = fields
            if msg == f"hello {me}".encode() and pid == me:
                found = fields
    assert found is not None, "no 'hello <pid>' line from this process on trace_pipe"
    task, pid, cpu, flags, ts, msg = found
    assert pid == me
    assert msg == f"hello {me}".encode()
    assert isinstance(cpu, int) and cpu >= 0
    assert isinstance(ts, float) and ts > 0


READ_COUNT = r"""
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET || args->fd != FD)
        return 0;
    u32 fd = args->fd;
    counts.increment(fd);
    return 0;
}
"""


def test_read_count_is_exact(zero_fd: int) -> None:
    n = 13
    with BPF(text=READ_COUNT, cflags=target_cflags(FD=zero_fd)) as b:
        counts = b["counts"]
        assert len(counts) == 0
        for _ in range(n):
            assert os.read(zero_fd, 1) == b"\0"
        assert counts[ctypes.c_uint32(zero_fd)].value == n
        assert counts[zero_fd].value == n  # a plain int key works too
        assert [(k.value, v.value) for k, v in counts.items()] == [(zero_fd, n)]


COUNTER = r"""
BPF_ARRAY(calls, u64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int zero = 0;
    u64 *v = calls.lookup(&zero);
    if (v)
        *v += 1;
    return 0;
}
"""


def test_detach_and_reattach_tracepoint() -> None:
    fn = "tracepoint__syscalls__sys_enter_getppid"
    with BPF(text=COUNTER, cflags=target_cflags()) as b:
        assert b.num_open_tracepoints() == 1
        for _ in range(2):
            os.getppid()
        assert b["calls"][0].value == 2
        b.detach_tracepoint("syscalls:sys_enter_getppid")
        assert b.num_open_tracepoints() == 0
        for _ in range(5):
            os.getppid()
        assert b["calls"][0].value == 2
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name=fn)
        os.getppid()
        assert b["calls"][0].value == 3


OPENAT = r"""
struct open_t { u32 pid; int flags; char fname[256]; };
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
    struct open_t d = {};
    d.pid = bpf_get_current_pid_tgid() >> 32;
    if (d.pid != TARGET)
        return 0;
    d.flags = args->flags;
    bpf_probe_read_user_str(&d.fname, sizeof(d.fname), args->filename);
    events.perf_submit(args, &d, sizeof(d));
    return 0;
}
"""


def test_openat_filename_arrives(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), f"rbcc-open-{uuid.uuid4().hex}")
    assert len(path) < 255
    with BPF(text=OPENAT, cflags=target_cflags()) as b:
        seen: list[tuple[int, int, bytes]] = []

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            seen.append((e.pid, e.flags, e.fname))

        b["events"].open_perf_buffer(on_event)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        poll_until(b.perf_buffer_poll, lambda: any(s[2] == path.encode() for s in seen))
        mine = [s for s in seen if s[2] == path.encode()]
    assert len(mine) == 1
    pid, flags, _ = mine[0]
    assert pid == os.getpid()
    assert flags & os.O_CREAT and flags & os.O_ACCMODE == os.O_WRONLY


READ_HIST = r"""
BPF_HISTOGRAM(dist);
TRACEPOINT_PROBE(syscalls, sys_enter_read) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET || args->fd != FD)
        return 0;
    dist.increment(bpf_log2l(args->count));
    return 0;
}
"""


def test_log2_histogram_of_read_sizes(zero_fd: int, capsys: pytest.CaptureFixture[str]) -> None:
    reads = {1: 1, 100: 2, 5000: 4}  # size -> how many reads of it
    with BPF(text=READ_HIST, cflags=target_cflags(FD=zero_fd)) as b:
        for size, times in reads.items():
            for _ in range(times):
                assert len(os.read(zero_fd, size)) == size
        dist = b["dist"]
        # slot = floor(log2(n)) + 1: 1 -> 1, 100 -> 7, 5000 -> 13
        assert {k.value: v.value for k, v in dist.items() if v.value} == {1: 1, 7: 2, 13: 4}
        assert dist[7].value == 2
        assert len(dist) == 64
        capsys.readouterr()
        dist.print_log2_hist("bytes")
        out = capsys.readouterr().out
    counts = {1: 1, 7: 2, 13: 4}
    stars = {1: 10, 7: 20, 13: 40}  # 40 * count / max
    expected = ["     bytes               : count     distribution"]
    for slot in range(1, 14):
        low, high = (0 if slot == 1 else 1 << (slot - 1)), (1 << slot) - 1
        bar = "*" * stars.get(slot, 0)
        expected.append(f"{low:>10} -> {high:<10} : {counts.get(slot, 0):<8} |{bar:<40}|")
    assert out.splitlines() == expected
    assert "        64 -> 127        : 2        |********************                    |" in out


NO_PARAMS = r"""
BPF_ARRAY(calls, u64, 1);
int count_call() {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    calls.atomic_increment(0);
    return 0;
}
"""


def test_a_function_without_parameters_is_a_program() -> None:
    with BPF(text=NO_PARAMS, cflags=target_cflags()) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="count_call")
        for _ in range(4):
            os.getppid()
        assert b["calls"][0].value == 4


def test_a_backlog_of_lines_reads_without_a_none_between_them() -> None:
    # bcc's programs end their messages in "\n", and the kernel ends each event with one: every
    # message is followed by an empty line, which is no sign of an empty pipe
    me = os.getpid()
    with BPF(text=HELLO, cflags=target_cflags()) as b:
        for _ in range(200):
            os.getppid()
        mine = nones = 0
        deadline = time.monotonic() + 10
        while mine < 200 and time.monotonic() < deadline:
            task, pid, cpu, flags, ts, msg = b.trace_fields(nonblocking=True)
            if task is None:
                nones += 1
                time.sleep(0.01)
            elif pid == me and msg == f"hello {me}".encode():
                mine += 1
    assert mine == 200
    # the pipe is shared: another program's lines may come and go, but not a None after each line
    assert nones < 20, nones
