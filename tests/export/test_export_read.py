"""Maps read into metrics (rbcc.export.read through Exporter): key fields decoded into labels, per-CPU
values summed, entries with the same labels summed, histograms in their base unit, the cardinality
guard, and scrapes while the maps churn (kernel and user side), which must always parse."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
import urllib.request

import pytest

from rbcc import BPF
from rbcc.export import Counter, Exporter, Family, Gauge, Histogram, Label, SpecError

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
struct conn_key_t { u32 pid; u32 daddr; u16 dport; u16 pad; s64 ret; char comm[16]; };
BPF_HASH(conns, struct conn_key_t, u64);
BPF_PERCPU_HASH(percpu, u32, u64);
BPF_HISTOGRAM(plain);
BPF_HISTOGRAM(linear, u32);
BPF_ARRAY(ops, u64, 4);
"""


def _family(families: list[Family], name: str) -> Family:
    return next(f for f in families if f.name == name)


@pytest.fixture(scope="module")
def bpf() -> BPF:
    return BPF(text=PROGRAM)


def test_labels_decode_key_fields_and_equal_labels_are_summed(bpf: BPF) -> None:
    conns = bpf["conns"]
    conns.clear()
    addr = int.from_bytes(socket.inet_aton("10.1.2.3"), "little")  # as the kernel stores it: network order
    port = socket.htons(443)
    for pid, ret, count in ((1, -111, 4), (2, -111, 6), (1, 0, 1)):
        conns[conns.Key(pid=pid, daddr=addr, dport=port, ret=ret, comm=b"curl")] = conns.Leaf(count)
    labels = (
        Label("daddr", "daddr", "ip"),
        Label("dport", "dport", "port", {"byte_order": "network"}),
        Label("result", "ret", "errno"),
        Label("comm", "comm", "comm"),
    )
    with Exporter() as exporter:
        exporter.add(bpf, [Counter("conns", "test_connects", "Connects", labels)], program="read")
        family = _family(exporter.collect(), "test_connects")
    assert family.type == "counter" and family.label_names == ("daddr", "dport", "result", "comm")
    assert family.series == {
        ("10.1.2.3", "443", "ECONNREFUSED", "curl"): 10.0,  # pids 1 and 2: no pid label, so summed
        ("10.1.2.3", "443", "0", "curl"): 1.0,
    }


def test_per_cpu_values_are_summed_and_scaled(bpf: BPF) -> None:
    percpu = bpf["percpu"]
    cpus = len(percpu.Leaf()) if hasattr(percpu.Leaf, "_length_") else os.cpu_count() or 1
    percpu[ctypes.c_uint32(5)] = percpu.Leaf(*([1000] * cpus))
    with Exporter() as exporter:
        exporter.add(bpf, [Gauge("percpu", "test_bytes", "Bytes", (Label("id"),), scale=0.5)], program="read")
        assert _family(exporter.collect(), "test_bytes").series == {("5",): 500.0 * cpus}


def test_histograms_are_cumulative_in_the_base_unit(bpf: BPF) -> None:
    plain, linear = bpf["plain"], bpf["linear"]
    plain[ctypes.c_int(1)] = ctypes.c_uint64(3)  # bpf_log2l: slot 1 holds 0 and 1
    plain[ctypes.c_int(10)] = ctypes.c_uint64(2)
    linear[ctypes.c_uint32(0)] = ctypes.c_uint64(4)
    linear[ctypes.c_uint32(2)] = ctypes.c_uint64(1)
    linear[ctypes.c_uint32(50)] = ctypes.c_uint64(7)
    with Exporter() as exporter:
        exporter.add(
            bpf,
            [
                Histogram("plain", "test_wait_seconds", "Wait", unit="msecs", max_slot=12),
                Histogram("linear", "test_queue", "Queue", kind="linear", width=2, max_slot=9),
            ],
            program="read",
        )
        families = exporter.collect()
    wait = _family(families, "test_wait_seconds")
    assert wait.unit == "seconds" and wait.bounds == pytest.approx(tuple(2**k / 1000 for k in range(13)))
    assert wait.buckets == {(): [0, 3] + [0] * 8 + [2, 0, 0, 0]}
    queue = _family(families, "test_queue")
    assert queue.bounds == tuple(float(2 * (k + 1)) for k in range(10))
    assert queue.buckets == {(): [4, 0, 1] + [0] * 7 + [7]}  # slot 50 is past max_slot: +Inf only


def test_a_metric_that_does_not_fit_its_map_is_refused_at_once(bpf: BPF) -> None:
    with Exporter() as exporter:
        with pytest.raises(SpecError, match=r"metrics\[0\]\.labels\[0\]\.field: .*no field 'dpid'.*pid, daddr"):
            exporter.add(bpf, [Counter("conns", "a", labels=(Label("pid", "dpid"),))], program="x")
        with pytest.raises(SpecError, match=r"metrics\[0\]\.map: the program has no map 'nosuch'"):
            exporter.add(bpf, [Counter("nosuch", "b")], program="y")
        with pytest.raises(SpecError, match=r"metrics\[1\]\.name: metric 'c' is exported by 'z' already"):
            exporter.add(bpf, [Counter("ops", "c"), Gauge("ops", "c")], program="z")
        with pytest.raises(SpecError, match=r"metrics\[0\]\.labels\[0\]\.field: the map's key is a struct"):
            exporter.add(bpf, [Counter("conns", "d", labels=(Label("whole"),))], program="w")


def test_the_guard_keeps_max_series_label_sets_stably_and_counts_the_rest(bpf: BPF) -> None:
    percpu = bpf["percpu"]
    percpu.clear()
    for key in range(10, 15):
        percpu[ctypes.c_uint32(key)] = percpu.Leaf()
    with Exporter() as exporter:
        exporter.add(bpf, [Gauge("percpu", "test_guarded", "G", (Label("id"),), max_series=3)], program="guard")
        families = exporter.collect()
        first = set(_family(families, "test_guarded").series)
        assert first == {("10",), ("11",), ("12",)}  # new label sets are let in in sorted order
        dropped = _family(families, "rbcc_export_series_dropped")
        assert dropped.series[("guard", "test_guarded")] == 2.0
        percpu[ctypes.c_uint32(1)] = percpu.Leaf()  # sorts first, but the kept ones stay
        assert set(_family(exporter.collect(), "test_guarded").series) == first
        del percpu[ctypes.c_uint32(11)]  # a kept one goes: its place is free for a new one
        assert set(_family(exporter.collect(), "test_guarded").series) == {("1",), ("10",), ("12",)}


CHURN = r"""
BPF_HASH(inflight, u32, u64, 4096);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 one = 1;
    inflight.update(&tid, &one);
    return 0;
}
TRACEPOINT_PROBE(raw_syscalls, sys_exit) {
    u32 tid = bpf_get_current_pid_tgid();
    inflight.delete(&tid);
    return 0;
}
BPF_HASH(churn, u32, u64, 20000);
BPF_HISTOGRAM(hist, u32, 64);
"""


def test_scrapes_during_map_churn_always_parse(tmp_path: object) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    b = BPF(text=CHURN)
    stop = threading.Event()
    rounds = [0]
    failed: list[BaseException] = []

    def churn() -> None:  # the user side: keys added and removed in bursts
        try:
            churn_rounds()
        except BaseException as e:  # noqa: BLE001 - the test says what went wrong in the thread
            failed.append(e)

    def churn_rounds() -> None:
        table, hist = b["churn"], b["hist"]
        while not stop.is_set():
            keys = [ctypes.c_uint32(k) for k in range(rounds[0] % 7, 3000, 7)]
            for k in keys:
                table[k] = ctypes.c_uint64(k.value)
                hist[ctypes.c_uint32(k.value % 60)] = ctypes.c_uint64(rounds[0])
            for k in keys[::2]:
                del table[k]
            rounds[0] += 1

    with b, Exporter(max_series=1000) as exporter:
        exporter.add(
            b,
            [
                Gauge("inflight", "test_inflight", "Syscalls in flight", (Label("tid"),)),
                Counter("churn", "test_churn", "Churned", (Label("key"),)),
                Histogram("hist", "test_churn_hist", "Churned slots", kind="linear", max_slot=40),
            ],
            program="churn",
        )
        host, port = exporter.serve("127.0.0.1:0")
        thread = threading.Thread(target=churn, daemon=True)
        thread.start()
        try:
            for _ in range(40):
                with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=30) as r:
                    text = r.read().decode()
                seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
                for family in parser.text_string_to_metric_families(text):
                    for sample in family.samples:
                        key = (sample.name, tuple(sorted(sample.labels.items())))
                        assert key not in seen, f"{key} twice"
                        seen.add(key)
                    if family.type == "histogram":
                        _check_histogram(family.samples)
                promtool = shutil.which("promtool")
                if promtool:
                    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
                    # 1 is a parse error; 3 only lint advice (it takes a "d" in a name for days)
                    assert done.returncode in (0, 3) and "error" not in done.stdout + done.stderr, done
        finally:
            stop.set()
            thread.join(10)
        assert not failed and rounds[0] > 1  # the maps did churn meanwhile
        health = _family(exporter.collect(), "rbcc_export_scrape_errors")
        assert set(health.series.values()) == {0.0}


def _check_histogram(samples: list[object]) -> None:
    """Buckets cumulative, +Inf last and equal to the count."""
    buckets = [s for s in samples if s.name.endswith("_bucket")]  # type: ignore[attr-defined]
    counts = [s.value for s in buckets]  # type: ignore[attr-defined]
    assert counts == sorted(counts)
    assert buckets[-1].labels["le"] == "+Inf"  # type: ignore[attr-defined]
    (total,) = [s.value for s in samples if s.name.endswith("_count")]  # type: ignore[attr-defined]
    assert total == counts[-1]


STACKS = r"""
struct addr_key_t { u64 addr; u32 pid; u32 pad; };
BPF_STACK_TRACE(stacks, 1024);
BPF_HASH(switches, int, u64, 1024);
BPF_HASH(addrs, struct addr_key_t, u64);
RAW_TRACEPOINT_PROBE(sched_switch) {
    int id = stacks.get_stackid(ctx, 0);
    switches.increment(id);
    return 0;
}
"""


def test_symbols_and_stacks_are_decoded() -> None:
    b = BPF(text=STACKS)
    with b, Exporter() as exporter:
        addrs = b["addrs"]
        user = ctypes.cast(ctypes.CDLL(None).getppid, ctypes.c_void_p).value or 0
        addrs[addrs.Key(addr=BPF.ksymname("do_sys_openat2"), pid=0)] = addrs.Leaf(1)
        addrs[addrs.Key(addr=user, pid=os.getpid())] = addrs.Leaf(2)
        os.sched_yield()
        stack = Label("stack", "", "kstack", {"stack_map": "stacks"})
        exporter.add(
            b,
            [
                Counter("switches", "test_switch_stacks", "Switches", (stack,)),
                Counter("addrs", "test_kernel", "K", (Label("sym", "addr", "ksym"), Label("pid", "pid"))),
                Counter("addrs", "test_user", "U", (Label("sym", "addr", "usym", {"pid_field": "pid"}),)),
            ],
            program="stacks",
        )
        families = exporter.collect()
    stacks = [labels[0] for labels in _family(families, "test_switch_stacks").series]
    # folded, root first: __schedule, then the tracepoint's machinery that ran the program, at the leaf
    assert any(
        ";__schedule;" in s and s.index("__schedule") < s.index("bpf_trace_run") for s in stacks if "bpf_trace_run" in s
    ), stacks[:3]
    assert ("do_sys_openat2", "0") in _family(families, "test_kernel").series
    user_symbols = {labels[0] for labels in _family(families, "test_user").series}
    assert any("getppid" in s for s in user_symbols), user_symbols
