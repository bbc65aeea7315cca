"""Every object a script holds works from any thread: bcc scripts poll in a thread while the main
thread prints intervals, and notebooks run cells on other threads. Nothing panics, and cleanup() from
another thread removes every probe."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _bpfutil import target_cflags

from rbcc import BPF, BPFError, VerifierError

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
struct event_t { u32 pid; u64 seq; };
BPF_PERF_OUTPUT(events);
BPF_HASH(counts, u32, u64);
BPF_ARRAY(seq, u64, 1);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    counts.increment(pid);
    int zero = 0;
    u64 *s = seq.lookup(&zero);
    if (!s)
        return 0;
    struct event_t e = {.pid = pid, .seq = __sync_fetch_and_add(s, 1)};
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
int on_getpgid(void *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == TARGET)
        counts.increment(0);
    return 0;
}
"""


def _links() -> int:
    """This process's BPF links: the probes it holds attached."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd) == "anon_inode:bpf_link"
        except OSError:
            pass
    return count


def _in_thread(f: Callable[[], object]) -> object:
    """Run f in a thread of its own; what it raised (PanicException included) is raised here."""
    result: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(f())
        except BaseException as e:  # noqa: BLE001 - a pyo3 PanicException is a BaseException
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return result[0]


def test_a_bpf_object_is_used_and_cleaned_up_from_other_threads() -> None:
    before = _links()
    b = BPF(text=PROGRAM, cflags=target_cflags())
    # attach from another thread: the function is loaded there, on first use
    _in_thread(lambda: b.attach_tracepoint(tp="syscalls:sys_enter_getpgid", fn_name="on_getpgid"))
    assert b.num_open_tracepoints() == 2
    seqs: list[int] = []
    b["events"].open_perf_buffer(lambda cpu, data, size: seqs.append(b["events"].event(data).seq))
    done = threading.Event()
    failures: list[BaseException] = []

    def poller() -> None:
        try:
            while not done.is_set():
                b.perf_buffer_poll(50)
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    thread = threading.Thread(target=poller)
    thread.start()
    try:
        for _ in range(5):
            os.getppid()
            os.getpgid(0)
        deadline = time.monotonic() + 5
        while len(seqs) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        # the main thread reads the table while the other polls
        counts = {k.value: v.value for k, v in b["counts"].items()}
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert sorted(seqs) == [0, 1, 2, 3, 4]  # decoded in the poller thread
    assert counts == {os.getpid(): 5, 0: 5}
    assert _links() == before + 2
    _in_thread(b.cleanup)
    assert _links() == before
    assert b.num_open_tracepoints() == 0


def test_using_a_cleaned_up_object_says_so() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        assert "counts" in b
    for use in (lambda: b["counts"], lambda: "counts" in b, lambda: len(b), lambda: b.get_table("seq")):
        with pytest.raises(BPFError, match="this BPF object was cleaned up"):
            use()
    b.cleanup()  # again: nothing left to do, and no error


def test_threads_compiling_one_new_program_at_once_all_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a fresh cache: the threads race for the kernel's headers, the PCH builds and the one cache entry
    monkeypatch.setenv("RBCC_CACHE_DIR", str(tmp_path / "cache"))
    text = PROGRAM + f"\n// {time.time_ns()}\n"
    results: list[object] = []

    def compile_and_count() -> None:
        try:
            with BPF(text=text, cflags=target_cflags()) as b:
                results.append(sorted(b))
        except BaseException as e:  # noqa: BLE001 - reported below
            results.append(e)

    threads = [threading.Thread(target=compile_and_count) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["counts", "events", "seq"]] * 8


def test_other_threads_run_while_a_map_is_walked_and_ctrl_c_ends_the_walk() -> None:
    # A walk of a big array's keys takes a while: the GIL is released for it (a chunk at a time), so a
    # script's other threads keep running, and Ctrl-C (checked between chunks) ends it.
    with BPF(text="BPF_ARRAY(big, u64, 500000);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }") as b:
        walked = b["big"].map
        ticks: list[float] = []
        done = threading.Event()

        def tick() -> None:
            while not done.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.001)

        ticker = threading.Thread(target=tick)
        ticker.start()
        try:
            time.sleep(0.05)
            start = time.monotonic()
            assert len(walked.keys()) == 500000  # noqa: SIM118 - a map, not a dict
            end = time.monotonic()
        finally:
            done.set()
            ticker.join()
        assert sum(start < t < end for t in ticks) >= 50, f"{end - start:.3f} s walking, other threads stopped"

        def interrupt() -> None:
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)  # Python's handler runs in the main thread

        threading.Thread(target=interrupt).start()
        with pytest.raises(KeyboardInterrupt):
            for _ in range(1000):
                walked.keys()


def test_threads_loading_at_once_each_get_their_own_verifier_log() -> None:
    # Loads run without the GIL; what libbpf prints (the verifier's log) goes to the load that caused it.
    unchecked = r"""
    BPF_HASH(h, u32, u64);
    TRACEPOINT_PROBE(syscalls, EVENT) {
        u32 k = 0;
        u64 *v = h.lookup(&k);
        return *v;
    }
    """
    events = ["sys_enter_getppid", "sys_enter_getpid", "sys_enter_gettid", "sys_enter_getuid"]
    errors: dict[str, BaseException] = {}

    def load(event: str) -> None:
        try:
            BPF(text=unchecked.replace("EVENT", event))
        except BaseException as e:  # noqa: BLE001 - the test looks at whatever it was
            errors[event] = e

    for _ in range(3):
        threads = [threading.Thread(target=load, args=(event,)) for event in events]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for event in events:
            error = errors.pop(event)
            assert isinstance(error, VerifierError), error
            assert f"prog 'tracepoint__syscalls__{event}'" in str(error)
            assert "invalid mem access" in error.log and error.insn is not None
