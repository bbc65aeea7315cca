"""Per-event output on the real kernel: perf buffers and ring buffers, their decoding, polling and losses."""

from __future__ import annotations

import ctypes
import os
import threading
import time

import pytest
from _bpfutil import own_comm, pinned_to_one_cpu, poll_until, target_cflags

from rbcc import BPF
from rbcc.errors import BPFError

pytestmark = pytest.mark.needs_root

N = 7


class Event(ctypes.Structure):
    """The C struct event_t below, declared by hand as a bcc user would."""

    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("seq", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
    ]


# Each getppid() of this process emits one event_t, numbered 0, 1, 2, ... by `seq`.
EVENT_PROLOGUE = r"""
#include <linux/sched.h>
struct event_t { u32 pid; u32 tid; u64 seq; char comm[TASK_COMM_LEN]; };
BPF_ARRAY(seqs, u64, 1);
static __always_inline int fill(struct event_t *e) {
    u64 id = bpf_get_current_pid_tgid();
    int zero = 0;
    u64 *seq = seqs.lookup(&zero);
    if (!seq)
        return -1;
    e->pid = id >> 32;
    e->tid = (u32)id;
    e->seq = *seq;
    *seq += 1;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return 0;
}
"""

PERF = (
    EVENT_PROLOGUE
    + r"""
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct event_t e = {};
    if (fill(&e))
        return 0;
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""
)

RINGBUF_OUTPUT = (
    EVENT_PROLOGUE
    + r"""
BPF_RINGBUF_OUTPUT(events, 8);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct event_t e = {};
    if (fill(&e))
        return 0;
    events.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""
)

RINGBUF_RESERVE = (
    EVENT_PROLOGUE
    + r"""
BPF_RINGBUF_OUTPUT(events, 8);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    struct event_t *e = events.ringbuf_reserve(sizeof(struct event_t));
    if (!e)
        return 0;
    if (fill(e)) {
        events.ringbuf_discard(e, 0);
        return 0;
    }
    events.ringbuf_submit(e, 0);
    return 0;
}
"""
)


def _check_events(got: list[tuple[tuple[int, int, int, bytes], tuple[int, int, int, bytes]]]) -> None:
    """``got`` holds (decoded by rbcc, cast by hand) pairs: both must agree and describe our N calls."""
    assert len(got) == N
    me = (os.getpid(), threading.get_native_id(), own_comm())
    for decoded, cast in got:
        assert decoded == cast
        pid, tid, _, comm = decoded
        assert (pid, tid, comm) == me
    assert sorted(seq for (_, _, seq, _), _ in got) == list(range(N))


def _fields(e: ctypes.Structure) -> tuple[int, int, int, bytes]:
    return (e.pid, e.tid, e.seq, e.comm)


def test_perf_buffer_delivers_exactly_the_events() -> None:
    with BPF(text=PERF, cflags=target_cflags()) as b:
        got = []
        sizes = set()

        def on_event(cpu: int, data: int, size: int) -> None:
            # bcc's callbacks get the record's address as a plain int (a ctypes c_void_p argument)
            assert type(data) is int and type(cpu) is int
            # Copy the fields out now: the record's memory is only valid during the callback.
            got.append((_fields(b["events"].event(data)), _fields(ctypes.cast(data, ctypes.POINTER(Event)).contents)))
            sizes.add(size)

        b["events"].open_perf_buffer(on_event)
        for _ in range(N):
            os.getppid()
        assert poll_until(b.perf_buffer_poll, lambda: len(got) >= N)
        b.perf_buffer_poll(100)  # nothing more may come
        assert min(sizes) >= ctypes.sizeof(Event)
    _check_events(got)


def test_wakeup_events_wakes_the_poll_only_once_that_many_wait() -> None:
    with BPF(text=PERF, cflags=target_cflags()) as b, pinned_to_one_cpu():
        got: list[int] = []
        b["events"].open_perf_buffer(lambda cpu, data, size: got.append(b["events"].event(data).seq), wakeup_events=4)
        for _ in range(3):
            os.getppid()
        # three waiting on one CPU wake nobody: the poll sleeps its whole second, then takes them
        started = time.monotonic()
        assert b.perf_buffer_poll(1000) == 3 and time.monotonic() - started >= 0.9
        for _ in range(4):
            os.getppid()
        started = time.monotonic()
        assert b.perf_buffer_poll(20_000) == 4 and time.monotonic() - started < 10
        assert got == list(range(7))
        with pytest.raises(BPFError, match="wakeup_events"):
            b["events"].open_perf_buffer(lambda cpu, data, size: None, wakeup_events=0)


@pytest.mark.parametrize("text", [RINGBUF_OUTPUT, RINGBUF_RESERVE], ids=["ringbuf_output", "ringbuf_reserve"])
def test_ring_buffer_delivers_exactly_the_events(text: str) -> None:
    with BPF(text=text, cflags=target_cflags()) as b:
        got = []
        contexts = []

        def on_event(ctx: object, data: int, size: int) -> None:
            assert size == ctypes.sizeof(Event) and type(data) is int
            contexts.append(ctx)
            got.append((_fields(b["events"].event(data)), _fields(ctypes.cast(data, ctypes.POINTER(Event)).contents)))

        marker = object()
        b["events"].open_ring_buffer(on_event, ctx=marker)
        for _ in range(N):
            os.getppid()
        assert poll_until(b.ring_buffer_poll, lambda: len(got) >= N)
        b.ring_buffer_poll(100)
    _check_events(got)
    assert all(c is marker for c in contexts)


def test_buffers_consume_without_waiting() -> None:
    submit = "events.perf_submit(args, &e, sizeof(e));"
    text = PERF.replace("BPF_PERF_OUTPUT(events);", "BPF_PERF_OUTPUT(events);\nBPF_RINGBUF_OUTPUT(ring, 8);")
    text = text.replace(submit, submit + "\n    ring.ringbuf_output(&e, sizeof(e), 0);")
    with BPF(text=text, cflags=target_cflags()) as b:
        perf_seqs: list[int] = []
        ring_seqs: list[int] = []
        b["events"].open_perf_buffer(lambda cpu, data, size: perf_seqs.append(b["events"].event(data).seq))
        b["ring"].open_ring_buffer(lambda ctx, data, size: ring_seqs.append(b["ring"].event(data).seq))
        assert b.perf_buffer_consume() == 0
        assert b.ring_buffer_consume() == 0
        for _ in range(3):
            os.getppid()
        assert b.ring_buffer_consume() == 3
        assert b.perf_buffer_consume() == 3
    assert sorted(perf_seqs) == [0, 1, 2]
    assert ring_seqs == [0, 1, 2]  # one ring for all CPUs: in submission order


@pytest.mark.parametrize("kind", ["perf", "ring"])
def test_poll_returns_after_the_timeout_when_idle(kind: str) -> None:
    text = PERF if kind == "perf" else RINGBUF_OUTPUT
    with BPF(text=text, cflags=target_cflags()) as b:
        got: list[int] = []
        if kind == "perf":
            b["events"].open_perf_buffer(lambda cpu, data, size: got.append(size))
            poll = b.perf_buffer_poll
        else:
            b["events"].open_ring_buffer(lambda ctx, data, size: got.append(size))
            poll = b.ring_buffer_poll
        timeout_ms = 300
        start = time.monotonic()
        assert poll(timeout_ms) == 0
        elapsed = time.monotonic() - start
    assert got == []
    assert timeout_ms / 1000 * 0.9 <= elapsed < timeout_ms / 1000 + 1


def test_perf_buffer_reports_lost_events() -> None:
    """A 1-page buffer overflows; lost_cb's counts plus the delivered records add up to every submit."""
    text = PERF.replace("char comm[TASK_COMM_LEN]; };", "char comm[TASK_COMM_LEN]; char blob[224]; };")
    total = 300
    with pinned_to_one_cpu(), BPF(text=text, cflags=target_cflags()) as b:
        delivered = []
        lost = []
        b["events"].open_perf_buffer(
            lambda cpu, data, size: delivered.append(b["events"].event(data).seq), page_cnt=1, lost_cb=lost.append
        )
        for _ in range(total - 1):
            os.getppid()
        while b.perf_buffer_poll(100):
            pass
        # The kernel reports a loss with the next record that fits, so send one more.
        os.getppid()
        assert poll_until(b.perf_buffer_poll, lambda: delivered[-1:] == [total - 1])
    assert sum(lost) > 0
    assert len(delivered) + sum(lost) == total
    assert delivered == sorted(delivered)


TWO_PERF = PERF.replace("BPF_PERF_OUTPUT(events);", "BPF_PERF_OUTPUT(events);\nBPF_PERF_OUTPUT(other);")


def test_poll_of_two_perf_buffers_waits_for_the_timeout() -> None:
    with BPF(text=TWO_PERF, cflags=target_cflags()) as b:
        b["events"].open_perf_buffer(lambda cpu, data, size: None)
        b["other"].open_perf_buffer(lambda cpu, data, size: None)
        start = time.monotonic()
        assert b.perf_buffer_poll(1000) == 0
        elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 2


def test_poll_of_two_perf_buffers_without_timeout_waits_for_an_event() -> None:
    with BPF(text=TWO_PERF, cflags=target_cflags()) as b:
        got: list[int] = []
        b["events"].open_perf_buffer(lambda cpu, data, size: got.append(b["events"].event(data).seq))
        b["other"].open_perf_buffer(lambda cpu, data, size: None)
        later = threading.Timer(0.3, os.getppid)  # same process, so the program sees it
        later.start()
        try:
            n = b.perf_buffer_poll(-1)
        finally:
            later.join()
        b.perf_buffer_poll(200)
    assert n == 1
    assert got == [0]


@pytest.mark.parametrize("kind", ["perf", "ring"])
def test_an_exception_in_a_callback_is_printed_and_polling_goes_on(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # bcc's callbacks run through ctypes, which prints an exception and goes on: one bad record must
    # not end a tool
    with BPF(text=PERF if kind == "perf" else RINGBUF_OUTPUT, cflags=target_cflags()) as b:
        seqs: list[int] = []

        def on_event(*args: int) -> None:
            seq = b["events"].event(args[1]).seq
            seqs.append(seq)
            if seq == 0:
                raise ValueError("bad first record")

        if kind == "perf":
            b["events"].open_perf_buffer(on_event)
            poll = b.perf_buffer_poll
        else:
            b["events"].open_ring_buffer(on_event)
            poll = b.ring_buffer_poll
        for _ in range(N):
            os.getppid()
        assert poll_until(poll, lambda: len(seqs) >= N)
    assert sorted(seqs) == list(range(N))
    err = capsys.readouterr().err
    assert "ValueError: bad first record" in err
    assert err.count("Traceback") == 1


@pytest.mark.parametrize("kind", ["perf", "ring"])
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_in_a_callback_ends_the_poll_and_loses_nothing(kind: str, stop: type) -> None:
    # Ctrl-C while a callback runs (or sys.exit in one) ends the poll at once; a tool that catches it
    # and polls again gets the records after it, each once
    with BPF(text=PERF if kind == "perf" else RINGBUF_OUTPUT, cflags=target_cflags()) as b:
        seqs: list[int] = []

        def on_event(*args: int) -> None:
            seq = b["events"].event(args[1]).seq
            seqs.append(seq)
            if seq == 2:
                raise stop()

        if kind == "perf":
            b["events"].open_perf_buffer(on_event)
            poll = b.perf_buffer_poll
        else:
            b["events"].open_ring_buffer(on_event)
            poll = b.ring_buffer_poll
        with pinned_to_one_cpu():  # one perf ring: the records come in order
            for _ in range(N):
                os.getppid()
        with pytest.raises(stop):
            poll_until(poll, lambda: False)
        assert seqs == [0, 1, 2]
        assert poll_until(poll, lambda: len(seqs) >= N)
        poll(100)
    assert seqs == list(range(N))


def test_a_negative_return_ends_a_ring_buffer_drain() -> None:
    # as in bcc, the callback's return goes to libbpf: a negative one stops the drain, which is no error
    with BPF(text=RINGBUF_OUTPUT, cflags=target_cflags()) as b:
        seqs: list[int] = []

        def on_event(ctx: object, data: int, size: int) -> int:
            seqs.append(b["events"].event(data).seq)
            return -1 if len(seqs) == 2 else 0

        b["events"].open_ring_buffer(on_event)
        for _ in range(5):
            os.getppid()
        assert b.ring_buffer_consume() == 2
        assert b.ring_buffer_consume() == 3
    assert seqs == list(range(5))


@pytest.mark.parametrize("kind", ["perf", "ring"])
def test_a_callback_that_polls_its_own_buffer_gets_an_error(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    # libbpf's drains are not reentrant: polling again from inside one is refused, not a crash
    with BPF(text=PERF if kind == "perf" else RINGBUF_OUTPUT, cflags=target_cflags()) as b:
        seqs: list[int] = []
        poll = b.perf_buffer_poll if kind == "perf" else b.ring_buffer_poll

        def on_event(*args: int) -> None:
            seqs.append(b["events"].event(args[1]).seq)
            poll(0)

        if kind == "perf":
            b["events"].open_perf_buffer(on_event)
        else:
            b["events"].open_ring_buffer(on_event)
        for _ in range(3):
            os.getppid()
        assert poll_until(poll, lambda: len(seqs) >= 3)
    assert sorted(seqs) == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.count("BPFError: this buffer is being drained by the poll that called this callback") == 3


@pytest.mark.parametrize("kind", ["perf", "ring"])
def test_buffers_are_polled_from_another_thread(kind: str) -> None:
    # the core's buffers are not tied to the thread that opened them; two threads take turns (the
    # record is cast by hand: the loaded object itself, which event() asks for the type, still is)
    with BPF(text=PERF if kind == "perf" else RINGBUF_OUTPUT, cflags=target_cflags()) as b:
        seqs: list[tuple[int, str]] = []

        def on_event(*args: int) -> None:
            seqs.append((ctypes.cast(args[1], ctypes.POINTER(Event)).contents.seq, threading.current_thread().name))

        if kind == "perf":
            b["events"].open_perf_buffer(on_event)
            poll = b.perf_buffer_poll
        else:
            b["events"].open_ring_buffer(on_event)
            poll = b.ring_buffer_poll
        done = threading.Event()

        def poller() -> None:
            while not done.is_set():
                poll(50)

        threads = [threading.Thread(target=poller, name=f"poller{i}") for i in range(2)]
        for t in threads:
            t.start()
        try:
            for _ in range(N):
                os.getppid()
                time.sleep(0.01)
            deadline = time.monotonic() + 3
            while len(seqs) < N and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            done.set()
            for t in threads:
                t.join()
    assert sorted(seq for seq, _ in seqs) == list(range(N))
    assert {name for _, name in seqs} <= {"poller0", "poller1"}


def test_a_callback_failing_on_every_record_is_summed_up_not_printed_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with BPF(text=PERF, cflags=target_cflags()) as b:
        calls: list[int] = []

        def on_event(*args: int) -> None:
            calls.append(1)
            raise ValueError(f"bad record {len(calls)}")

        b["events"].open_perf_buffer(on_event)
        for _ in range(12):
            os.getppid()
        assert poll_until(b.perf_buffer_poll, lambda: len(calls) >= 12)
    err = capsys.readouterr().err
    assert len(calls) == 12
    assert err.count("Traceback") == 3  # the first few in full
    assert "further exceptions in" in err
    assert "on_event: 10 so far (the last: ValueError: bad record 10)" in err
