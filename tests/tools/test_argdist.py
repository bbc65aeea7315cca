"""argdist: its C, the one-line stop on kernel-function probes, and live histograms and counts of the
reads and syscalls a test program and the test itself make."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _probe_targets import READS, build, probed
from _toolcheck import refusal_line, text_of

from rbcc import BPF
from rbcc.tools import argdist


def _text(*argv: str) -> str:
    return text_of(argdist, *argv)


def test_histograms_counts_and_entry_values_in_the_c() -> None:
    hist = _text("-H", "t:syscalls:sys_enter_read():u64:args->count:args->fd != 0")
    assert "BPF_HISTOGRAM(sys_enter_read_hash0, u64);" in hist
    assert "u64 __key = args->count;" in hist and "if (!(args->fd != 0))" in hist
    assert "int sys_enter_read_probe0(struct tracepoint__syscalls__sys_enter_read *args)" in hist
    count = _text("-p", "42", "-C", "p:c:write(int fd, char* buf, size_t len):char*,int:buf,fd:fd==1")
    assert "struct __string_t v0;" in count and "int v1;" in count
    assert "bpf_probe_read_user_str(&__key.v0.s, sizeof(__key.v0.s), (void *)(buf));" in count
    assert "if (__tgid != 42) return 0;" in count and "(struct pt_regs *ctx, int fd, char* buf, size_t len)" in count
    latency = _text("-H", "r::__vfs_read(void *file, void *buf, size_t count):size_t:$entry(count):$latency > 1000000")
    assert "int __vfs_read_probe0_entry(struct pt_regs *ctx, void *file, void *buf, size_t count)" in latency
    assert "(bpf_ktime_get_ns() - *__entry___latency) > 1000000" in latency and "(*__entry_count)" in latency
    assert "PT_REGS_RC(ctx)" in _text("-C", "r:c:read()") and "(bpf_get_current_pid_tgid() >> 32)" in _text(
        "-C", "t:sched:sched_switch():u32:$PID"
    )
    usdt = _text("-C", "u:/bin/true:probe():u64:arg2")
    assert "bpf_usdt_readarg(2, ctx, &__arg2);" in usdt and "__key.v0 = __arg2;" in usdt


@pytest.mark.needs_root
def test_kernel_probe_c_passes_the_verifier() -> None:
    text = _text("-H", "r::__vfs_read(void *file, void *buf, size_t count):size_t:$entry(count):$latency > 1000")
    b = BPF(text=text)
    try:
        assert b.load_func("__vfs_read_probe0", BPF.KPROBE).fd >= 0
        assert b.load_func("__vfs_read_probe0_entry", BPF.KPROBE).fd >= 0
    finally:
        b.cleanup()


@pytest.mark.without_kprobes
def test_kernel_probes_stop_with_one_line() -> None:
    line = refusal_line("argdist", "-C", "p::vfs_read(void *file):u64:1")
    assert line.startswith("argdist: cannot attach kprobe to vfs_read: this kernel has no kprobes")


def _hist(section: str) -> dict[int, int]:
    return {int(lo): int(n) for lo, n in re.findall(r"(\d+) -> \d+\s*: (\d+)", section) if int(n)}


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("argdist"))


@pytest.mark.needs_root
def test_histogram_of_read_sizes_matches_the_reads(program: Path) -> None:
    with probed(program, calls=6) as p:
        # -c: each interval shows the totals so far; the first interval's line is the "header"
        out, err = run_interrupted(
            ["argdist", "-c", "-i", "1", "-p", str(p.pid),
             "-H", "t:syscalls:sys_enter_read():u64:args->count:args->fd != 0"],
            lambda h: re.fullmatch(r"\[\d\d:\d\d:\d\d\]\n", h) is not None,
            p.go,
            lambda out: len(_hist(out.split("[")[-1])) == 3,
        )  # fmt: skip
    last = out.split("[")[-1]
    assert "args->count" in last
    # six reads: two of each size, each in its power-of-2 bucket
    assert _hist(last) == {1 << (size.bit_length() - 1): 2 for size in READS}, out


@pytest.mark.needs_root
def test_counts_of_the_tests_own_syscalls() -> None:
    def workload() -> None:
        for _ in range(5):
            os.getppid()
        for fd in (os.open("/dev/null", os.O_WRONLY), os.open("/dev/null", os.O_WRONLY)):
            os.write(fd, b"x")
            os.close(fd)

    me = str(os.getpid())
    out, err = run_interrupted(
        ["argdist", "-c", "-p", me, "-C", "t:syscalls:sys_enter_getppid()#getppid calls",
         "-C", "t:syscalls:sys_enter_write():u64:args->count:args->count == 1"],
        lambda h: h.startswith("["),
        workload,
        lambda out: "\t5          total calls" in out and "\t2          args->count = 1" in out,
    )  # fmt: skip
    last = out.split("[")[-1]
    assert "getppid calls\n\tCOUNT      EVENT\n\t5          total calls\n" in last, out
    assert "\t2          args->count = 1\n" in last, out
