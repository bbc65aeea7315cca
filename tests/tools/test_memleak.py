"""memleak: the C it builds for each mode, and live runs that find the allocations a test program
leaks (sizes, counts, the leaking functions in the stacks) and kernel allocations the test holds."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from _bpfutil import build_c_program, run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import memleak

# Leaks 3 x 1234 bytes (malloc), 2 x 3000 (calloc), 1 x 4321 (posix_memalign) from named functions,
# frees one 7777, and sleeps. It starts when a line arrives on stdin, or after argv[1] seconds.
LEAKY = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) void *leak_malloc(size_t n) { return malloc(n); }
__attribute__((noinline)) void *leak_calloc(size_t n) { return calloc(n, 3); }
__attribute__((noinline)) void *leak_memalign(size_t n) { void *p = 0; posix_memalign(&p, 64, n); return p; }
int main(int argc, char **argv) {
    char line[16];
    if (argc > 1) sleep(atoi(argv[1])); else if (!fgets(line, sizeof line, stdin)) return 1;
    for (int i = 0; i < 3; i++) leak_malloc(1234);
    for (int i = 0; i < 2; i++) leak_calloc(1000);
    leak_memalign(4321);
    free(malloc(7777));
    puts("leaked");
    fflush(stdout);
    sleep(60);
    return 0;
}
"""


def _args(*argv: str):  # noqa: ANN202
    return memleak.build_parser().parse_args(list(argv))


def test_user_mode_probes_the_allocators_arguments() -> None:
    text = memleak.bpf_text(_args("-p", "1"))
    assert "int malloc_enter(struct pt_regs *ctx) {\n    return alloc_enter(ctx, PT_REGS_PARM1(ctx));" in text
    assert "alloc_enter(ctx, PT_REGS_PARM1(ctx) * PT_REGS_PARM2(ctx))" in text  # calloc
    assert "get_stackid(ctx, BPF_F_USER_STACK)" in text and "TRACEPOINT_PROBE(kmem" not in text
    assert "int posix_memalign_exit(struct pt_regs *ctx)" in text


def test_kernel_modes_use_the_kmem_and_percpu_tracepoints() -> None:
    kernel = memleak.bpf_text(_args())
    for tp in ("kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc", "mm_page_free"):
        assert f"TRACEPOINT_PROBE(kmem, {tp})" in kernel
    assert "kmalloc_node" not in kernel and "kmalloc_node" in memleak.bpf_text(_args(), node_tracepoints=True)
    assert "get_stackid(ctx, 0)" in kernel and "if (0)\n        free_enter" in kernel
    assert "if (1)\n        free_enter" in memleak.bpf_text(_args("--wa-missing-free"))
    percpu = memleak.bpf_text(_args("--percpu"))
    assert "RAW_TRACEPOINT_PROBE(percpu_alloc_percpu)" in percpu and "kmem" not in percpu


def test_size_sampling_and_trace_options() -> None:
    text = memleak.bpf_text(_args("-z", "16", "-Z", "4096", "-s", "5", "-t"))
    assert "if (size < 16 || size > 4096)\n        return 0;" in text
    assert "if (5 > 1 &&" in text and "if (1)\n        bpf_trace_printk" in text
    with pytest.raises(SystemExit):
        memleak.main(["-z", "100", "-Z", "10"])


def _stacks(out: str) -> list[tuple[int, int, str]]:
    """(bytes, allocations, frames) of every stack of the last report."""
    last = out.rsplit("Top ", 1)[-1]
    found = re.findall(r"^\t(\d+) bytes in (\d+) allocations from stack\n((?:\t\t.*\n?)*)", last, re.M)
    return [(int(size), int(count), frames) for size, count, frames in found]


def _leaks(out: str) -> dict[str, tuple[int, int]]:
    """The test program's leaks by leaking function: (bytes, allocations)."""
    leaks = {}
    for size, count, frames in _stacks(out):
        for fn in ("leak_malloc", "leak_calloc", "leak_memalign"):
            if re.search(rf"\b{fn}\+0x[0-9a-f]+ \[leaky\]", frames):
                leaks[fn] = (size, count)
    return leaks


EXPECTED = {"leak_malloc": (3702, 3), "leak_calloc": (6000, 2), "leak_memalign": (4321, 1)}


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_program(tmp_path_factory.mktemp("memleak"), "leaky", LEAKY, "-O0", "-g", "-fno-omit-frame-pointer")


@pytest.mark.needs_root
def test_finds_what_a_process_leaks_by_stack(leaky: Path) -> None:
    prog = subprocess.Popen([str(leaky)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert prog.stdin is not None and prog.stdout is not None
    try:

        def start() -> None:
            prog.stdin.write("go\n")
            prog.stdin.flush()
            assert prog.stdout.readline() == "leaked\n"

        out, _ = run_interrupted(
            ["tool", "memleak", "-a", "-p", str(prog.pid), "1"],
            lambda h: h.startswith(f"Attaching to pid {prog.pid}"),
            start,
            lambda out: _leaks(out) == EXPECTED,
        )
    finally:
        prog.kill()
        prog.wait()
    assert _leaks(out) == EXPECTED, out
    # -a: each outstanding allocation, with its size; the freed 7777 bytes are not among them
    sizes = [int(s) for s in re.findall(r"^\taddr = [0-9a-f]+ size = (\d+)$", out.rsplit("Top ", 1)[-1], re.M)]
    assert sorted(s for s in sizes if s in (1234, 3000, 4321)) == [1234, 1234, 1234, 3000, 3000, 4321]
    assert 7777 not in sizes


@pytest.mark.needs_root
def test_runs_a_command_and_combines_by_stack(leaky: Path) -> None:
    out, _ = run_interrupted(
        ["tool", "memleak", "--combined-only", "-c", f"{leaky} 1", "1"],
        lambda h: h.startswith(f"Executing '{leaky} 1' and tracing the resulting process."),
        lambda: None,
        lambda out: _leaks(out) == EXPECTED,
    )
    assert _leaks(out) == EXPECTED, out


@pytest.mark.needs_root
def test_trace_mode_prints_each_call(leaky: Path) -> None:
    prog = subprocess.Popen([str(leaky)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert prog.stdin is not None
    try:

        def start() -> None:
            prog.stdin.write("go\n")
            prog.stdin.flush()

        out, _ = run_interrupted(
            ["tool", "memleak", "-t", "-p", str(prog.pid)],
            lambda h: h.startswith("Attaching to pid"),
            start,
            lambda out: "size = 7777" in out and "free entered" in out,
        )
    finally:
        prog.kill()
        prog.wait()
    assert out.count("alloc entered, size = 1234") == 3, out
    assert "alloc exited, size = 4321, result = " in out
    assert re.search(r"free entered, address = [0-9a-f]+, size = 7777", out)


@pytest.mark.needs_root
def test_kernel_mode_sees_the_pipes_the_test_holds() -> None:
    held: list[int] = []

    def open_pipes() -> None:
        for _ in range(64):
            held.extend(os.pipe())

    def seen(out: str) -> bool:
        return any("alloc_pipe_info" in frames and count >= 64 for _, count, frames in _stacks(out))

    try:
        out, _ = run_interrupted(
            ["tool", "memleak", "-T", "1000", "-o", "100", "1"],
            lambda h: h.startswith("Attaching to kernel allocators"),
            open_pipes,
            seen,
        )
    finally:
        for fd in held:
            os.close(fd)
    assert seen(out), out[-3000:]
    # kernel frames, resolved from kallsyms
    assert re.search(r"^\t\t0x[0-9a-f]{16}\t\w+\+0x[0-9a-f]+ \[kernel\]$", out, re.M)


def test_ebpf_prints_the_program() -> None:
    out = run_rbcc("tool", "memleak", "--ebpf", "-p", "1")
    assert out.returncode == 0 and "int realloc_enter(struct pt_regs *ctx)" in out.stdout, out.stderr
