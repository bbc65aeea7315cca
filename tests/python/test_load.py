"""Loading (src/load.rs): a function is loaded as whatever program type its attach needs, and the
compiler (libclang) is gone from the process once BPF() returns."""

import os
import uuid

import pytest

from rbcc import BPF

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


@needs_root
def test_plain_function_attaches_as_tracepoint_and_shares_maps() -> None:
    # `int count(void *ctx)` is loaded as a kprobe-type program first; attaching it to a tracepoint
    # loads it again as a tracepoint program that must share the same map.
    b = BPF(
        text=r"""
BPF_ARRAY(hits, u64, 1);
int count(void *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET) return 0;
    int zero = 0;
    hits.increment(zero);
    return 0;
}
""",
        cflags=[f"-DTARGET={os.getpid()}"],
    )
    try:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="count")
        for _ in range(7):
            os.getppid()
        assert b["hits"][0].value == 7
        assert b.num_open_tracepoints() == 1
        b.detach_tracepoint(tp="syscalls:sys_enter_getppid")
        os.getppid()
        assert b["hits"][0].value == 7
    finally:
        b.cleanup()


def _mapped_libraries() -> str:
    with open("/proc/self/maps") as f:
        return f.read()


@needs_root
def test_libclang_is_not_resident_after_compiling() -> None:
    # A fresh program text (not cached), so this really goes through libclang.
    marker = uuid.uuid4().hex
    b = BPF(text=f"BPF_HASH(m_{marker}, u32, u64);\nint f(void *ctx) {{ return 0; }}\n")
    assert not b.cache_hit
    assert "libclang" not in _mapped_libraries()
    b.cleanup()
