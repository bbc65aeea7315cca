"""argdist: its C, the one-line stop on kernel-function probes, and live histograms and counts of the
reads, calls and syscalls a test program and the test itself make (the top keys only, string keys cut
to a size, one thread's only)."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _probe_targets import READS, build, probed
from _toolcheck import refusal_line, run_rbcc, text_of

from rbcc import BPF
from rbcc._specs.argdist import parse_argdist
from rbcc._specs.gen import argdist_program, spec_error
from rbcc.tools import argdist


def _text(*argv: str) -> str:
    return text_of(argdist, *argv)


def test_histograms_counts_and_entry_values_in_the_c() -> None:
    hist = _text("-H", "t:syscalls:sys_enter_read():u64:args->count:args->fd != 0")
    assert "BPF_HISTOGRAM(sys_enter_read_hash0, u64);" in hist
    assert "u64 __key = (args->count);" in hist and "if (!(args->fd != 0))" in hist
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
    assert "bpf_usdt_readarg(2, ctx, &__arg2);" in usdt and "__key.v0 = (__arg2);" in usdt


def test_clang_errors_in_a_spec_point_into_the_spec() -> None:
    spec = parse_argdist("r::f(size_t size, foo_t x):u64,int:$entry(size),$retval->x:size >\n bar", "freq")
    text, probes = argdist_program([spec])
    lines = text.splitlines()

    def position(needle: str, what: str = "error") -> int | None:
        # clang's error at the first line with the needle, in the words rbcc.BPF's CompileError has
        n = next(n for n, line in enumerate(lines) if needle in line)
        message = f"<bpf text>:{n + 1}:{lines[n].index(needle) + 1}: error: {what}\n        {lines[n]}"
        e = spec_error(message, probes)
        return None if e is None else e.position

    assert position("bar") == spec.text.index("bar")
    assert position("->x") == spec.text.index("->x")
    assert position("PT_REGS_RC(ctx)->x") == spec.text.index("$retval")  # rewritten: where the piece starts
    assert position("foo_t") == spec.text.index("foo_t")  # the signature, in the entry function
    assert position("BPF_HASH") is None  # not in a spec's piece: clang's message stays as it is
    e = spec_error(f"<bpf text>:{lines.index('    if (!(size >  bar))') + 1}:5: error: not a bool", probes)
    assert e is not None and e.position == spec.text.index("size >") and str(e).startswith("clang: not a bool\n")


@pytest.mark.needs_root
def test_filter_errors_point_at_the_spec() -> None:
    # one that does not read as an expression is refused as the spec is read
    spec = "t:syscalls:sys_enter_read():u64:args->count:args->fd == == 1"
    out = run_rbcc("argdist", "-C", spec, "-d", "1")
    assert out.returncode == 1 and out.stderr.splitlines() == [
        "argdist: expected a value after '==', not '=='",
        f"    {spec}",
        "    " + " " * spec.rindex("==") + "^",
    ]
    # one clang rejects comes back at the spec, not at a line of the generated C
    spec = "t:syscalls:sys_enter_read():u64:args->count:args->fdx == 1"
    out = run_rbcc("argdist", "-C", spec, "-d", "1")
    assert out.returncode == 1 and out.stderr.splitlines() == [
        "argdist: clang: no member named 'fdx' in 'struct tracepoint__syscalls__sys_enter_read'",
        f"    {spec}",
        "    " + " " * spec.index("fdx") + "^",
    ]


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


def _rows(section: str) -> dict[str, int]:
    """A count section's rows as {event: count}."""
    return {event: int(n) for n, event in re.findall(r"^\t(\d+) +(.+)$", section, re.M)}


def _last(out: str) -> str:
    return out.split("\n[")[-1]


@pytest.mark.needs_root
def test_top_keeps_the_most_frequent_keys(program: Path) -> None:
    # rbcc_leaf's a is 10, 20, ... 60: the key is 0 once, 1 three times (20, 30, 40), 2 twice (50, 60)
    key = "(a > 15) + (a > 45)"
    with probed(program, calls=6) as p:
        out, err = run_interrupted(
            ["argdist", "-c", "-T", "2", "-p", str(p.pid), "-C", f"p:{program}:rbcc_leaf(int a, char *name):int:{key}"],
            lambda h: re.fullmatch(r"\[\d\d:\d\d:\d\d\]\n", h) is not None,
            p.go,
            lambda out: f"{key} = 1" in _last(out),
        )
    # -T 2: the two most frequent, the most frequent last
    rows = re.findall(r"^\t(\d+) +(.+)$", _last(out), re.M)
    assert rows == [("2", f"{key} = 2"), ("3", f"{key} = 1")], out


@pytest.mark.needs_root
def test_string_keys_of_a_function_and_a_usdt_probe(program: Path) -> None:
    with probed(program, calls=4) as p:
        out, err = run_interrupted(
            ["argdist", "-c", "-p", str(p.pid),
             "-C", f"p:{program}:rbcc_leaf(int a, char *name):char*:name",
             "-C", f"u:{program}:added():char*,int:arg2,arg1#added"],
            lambda h: re.fullmatch(r"\[\d\d:\d\d:\d\d\]\n", h) is not None,
            p.go,
            lambda out: len(_rows(_last(out))) == 8,
        )  # fmt: skip
    leaf, added = _last(out).split("\nadded\n")
    assert _rows(leaf) == {f"name = name-{i}": 1 for i in range(1, 5)}, out
    assert _rows(added) == {f"arg2 = name-{i}, arg1 = {10 * i}": 1 for i in range(1, 5)}, out


@pytest.mark.needs_root
def test_string_size_cuts_the_strings_read(program: Path) -> None:
    names = f"p:{program}:rbcc_leaf(int a, char *name):char*:name"
    with probed(program, calls=3) as p:
        out, err = run_interrupted(
            ["argdist", "-c", "-z", "4", "-p", str(p.pid), "-C", names],
            lambda h: re.fullmatch(r"\[\d\d:\d\d:\d\d\]\n", h) is not None,
            p.go,
            lambda out: "name = nam\n" in _last(out),
        )
    # -z 4: three characters and the NUL, so the three names are one key
    assert _rows(_last(out)) == {"name = nam": 3}, out


@pytest.mark.needs_root
def test_thread_filter_counts_only_that_threads_calls() -> None:
    ready, go = threading.Event(), threading.Event()
    tids: list[int] = []

    def calls() -> None:
        tids.append(threading.get_native_id())
        ready.set()
        go.wait(timeout=30)
        for _ in range(4):
            os.getppid()

    thread = threading.Thread(target=calls)
    thread.start()
    ready.wait(timeout=30)

    def workload() -> None:
        for _ in range(3):
            os.getppid()
        go.set()
        thread.join(timeout=30)

    try:
        out, err = run_interrupted(
            ["argdist", "-c", "-t", str(tids[0]), "-C", "t:syscalls:sys_enter_getppid()"],
            lambda h: h.startswith("["),
            workload,
            lambda out: "total calls" in _last(out),
        )
    finally:
        go.set()
        thread.join(timeout=30)
    # the thread's 4 calls, not the main thread's 3
    assert _rows(_last(out)) == {"total calls": 4}, out
