"""bcc's map declarations of every kind, used from BPF C on the real kernel.

Each program records what the kernel did into an ordinary array (``out``), which the test reads back: the
queue's order, the LPM trie's longest-prefix match, a tail call through a program array, per-task
storage, build-id stack traces.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess

import pytest
from _bpfutil import target_cflags

from rbcc import BPF
from rbcc.errors import CompileError

pytestmark = pytest.mark.needs_root

# BPF_MAP_TYPE_* numbers from the kernel's UAPI.
MAP_TYPES = {
    "q": 22,
    "st": 23,
    "trie": 11,
    "progs": 3,
    "perf": 4,
    "cg": 8,
    "dev": 14,
    "cpus": 16,
    "xsk": 17,
    "inner": 2,
    "outer_a": 12,
    "outer_h": 13,
    "socks": 15,
    "sockh": 18,
    "task": 29,
    "sk": 24,
    "inode": 28,
    "builds": 7,
}

EVERY_KIND = r"""
BPF_QUEUE(q, u64, 16);
BPF_STACK(st, u32, 8, 0);
BPF_LPM_TRIE(trie, struct ipv4_key, u32, 64);
BPF_PROG_ARRAY(progs, 4);
BPF_PERF_ARRAY(perf, 2);
BPF_CGROUP_ARRAY(cg, 1);
BPF_DEVMAP(dev, 4);
BPF_CPUMAP(cpus, 2);
BPF_XSKMAP(xsk, 2);
BPF_ARRAY(inner, u64, 4);
BPF_ARRAY_OF_MAPS(outer_a, "inner", 4);
BPF_HASH_OF_MAPS(outer_h, u32, "inner", 8);
BPF_SOCKMAP(socks, 4);
BPF_SOCKHASH(sockh, u64, 8);
BPF_TASK_STORAGE(task, u64);
BPF_SK_STORAGE(sk, u64);
BPF_INODE_STORAGE(inode, u32);
BPF_STACK_TRACE_BUILDID(builds, 32);
"""

PROGRAM = (
    r"""
struct ipv4_key { u32 prefixlen; u32 addr; };
"""
    + EVERY_KIND
    + r"""
BPF_ARRAY(out, u64, 16);

static inline void put(int slot, u64 v) { out.update(&slot, &v); }

int tail(struct tracepoint__syscalls__sys_enter_getppid *args) {
    put(15, 99);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    for (u64 i = 1; i <= 3; i++) {
        u32 w = i;
        q.push(&i, 0);
        st.push(&w, 0);
    }
    u64 v = 0;
    u32 w = 0;
    q.peek(&v);
    put(0, v);
    q.pop(&v);
    put(1, v);
    q.pop(&v);
    put(2, v);
    st.pop(&w);
    put(3, w);
    st.peek(&w);
    put(4, w);

    struct ipv4_key k = {32, ADDR};
    u32 *hit = trie.lookup(&k);
    put(5, hit ? *hit : 0);

    u64 *t = task.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (t) {
        *t += 1;
        put(6, *t);
    }

    int z = 0;
    void *m = outer_a.lookup(&z);
    put(7, m != 0);
    if (m) {
        u64 *slot = bpf_map_lookup_elem(m, &z);
        put(8, slot ? *slot : 0);
    }

    int id = builds.get_stackid(args, BPF_F_USER_STACK);
    put(9, id >= 0 ? id : 0xffff);

    progs.call(args, 1);
    put(14, 1); /* not reached when the tail call happens */
    return 0;
}
"""
)

LOCALHOST = 0x0100007F  # 127.0.0.1 as the u32 the kernel stores (network byte order on little-endian)


def test_every_bcc_map_kind_is_created_with_its_type() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags(ADDR=LOCALHOST)) as b:
        core = b._obj  # the core object: the map types as the kernel reports them
        assert {name: core.map(name).map_type for name in MAP_TYPES} == MAP_TYPES


def test_queue_stack_trie_task_storage_map_in_map_and_tail_call() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags(ADDR=LOCALHOST)) as b:
        trie = b["trie"]
        trie[trie.Key(8, 0x7F)] = trie.Leaf(42)  # 127.0.0.0/8
        b["inner"][0] = ctypes.c_uint64(1234)
        core = b._obj
        inner = core.map("inner")  # its fd lives as long as this handle
        core.map("outer_a").update(struct.pack("i", 0), struct.pack("i", inner.fd))
        b["progs"][1] = ctypes.c_int(core.prog_fd("tail"))

        os.getppid()
        out = [b["out"][i].value for i in range(16)]
        assert out[0:3] == [1, 1, 2]  # queue: first in, first out; peek leaves the head
        assert out[3:5] == [3, 2]  # stack: last in, first out
        assert out[5] == 42  # longest prefix 127.0.0.0/8 matched 127.0.0.1/32
        assert out[6] == 1  # per-task storage created on first use
        assert out[7:9] == [1, 1234]  # the inner map found through the outer array
        assert out[15] == 99 and out[14] == 0  # the tail call ran, and did not return

        os.getppid()
        assert b["out"][6].value == 2  # the same task's storage, incremented


def _build_id(path: str) -> bytes | None:
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    for line in notes.splitlines():
        if "Build ID:" in line:
            return bytes.fromhex(line.split("Build ID:")[1].strip())
    return None


def _mapped_build_ids() -> dict[bytes, str]:
    """Build id → path of every ELF file mapped into this process."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if len(line.split()) >= 6 and line.split()[-1].startswith("/")}
    found = {}
    for path in paths:
        build_id = _build_id(path)
        if build_id is not None:
            found[build_id] = path
    return found


def test_build_id_stack_traces_name_the_mapped_files() -> None:
    """Frames of a BPF_STACK_TRACE_BUILDID are (status, build id, file offset)."""
    with BPF(text=PROGRAM, cflags=target_cflags(ADDR=LOCALHOST)) as b:
        os.getppid()
        stack_id = b["out"][9].value
        assert stack_id != 0xFFFF, "bpf_get_stackid failed"
        frames = [(f.status, bytes(f.build_id), f.offset) for f in b["builds"].walk(stack_id)]
        raw = b._obj.map("builds").lookup(struct.pack("I", stack_id))
        assert frames[0] == struct.unpack_from("<i20sQ", raw, 0)  # the layout the kernel writes
    mapped = _mapped_build_ids()
    # status 1 is BPF_STACK_BUILD_ID_VALID: the frame is (build id, offset in that file).
    valid = [(mapped.get(build_id), offset) for status, build_id, offset in frames if status == 1]
    assert valid, f"no frame resolved to a build id: {frames}"
    for path, offset in valid:
        assert path is not None, f"a frame's build id matches no file mapped here: {frames}"
        assert 0 < offset < os.path.getsize(path)


def test_map_of_maps_without_its_inner_map_is_a_compile_error() -> None:
    with pytest.raises(CompileError) as err:
        BPF(text='BPF_ARRAY_OF_MAPS(outer, "", 4);\nint f(void *ctx) { return 0; }')
    assert "inner map" in str(err.value) and ":1:" in str(err.value)


def test_unknown_map_kind_is_a_compile_error_at_its_line() -> None:
    with pytest.raises(CompileError) as err:
        BPF(text='\n\nBPF_TABLE("no_such_kind", int, int, m, 4);\nint f(void *ctx) { return 0; }')
    assert 'map kind "no_such_kind"' in str(err.value) and ":3:" in str(err.value)


PERF_READ = r"""
BPF_PERF_ARRAY(clock, NCPU);
BPF_ARRAY(out, u64, 4);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int slot = 0;
    u64 now = clock.perf_read(CUR_CPU_IDENTIFIER);
    out.update(&slot, &now);
    struct bpf_perf_event_value v = {};
    slot = 1;
    u64 err = clock.perf_counter_value(CUR_CPU_IDENTIFIER, &v, sizeof(v));
    out.update(&slot, &err);
    slot = 2;
    out.update(&slot, &v.counter);
    slot = 3;
    out.update(&slot, &v.enabled);
    return 0;
}
"""


def test_perf_array_reads_the_counters_opened_from_python() -> None:
    from rbcc import PerfSWConfig, PerfType
    from rbcc.utils import get_possible_cpus

    with BPF(text=PERF_READ, cflags=target_cflags(NCPU=len(get_possible_cpus()))) as b:
        b["clock"].open_perf_event(PerfType.SOFTWARE, PerfSWConfig.CPU_CLOCK)
        os.getppid()
        first = [b["out"][i].value for i in range(4)]
        os.getppid()
        second = b["out"][0].value
    assert first[1] == 0, f"bpf_perf_event_read_value failed: {first[1] - (1 << 64)}"
    # the CPU clock counts nanoseconds: running, and moving forward between the two calls
    assert 0 < first[0] < (1 << 63) and 0 < first[2] < (1 << 63) and first[3] > 0
    assert second > first[0]
