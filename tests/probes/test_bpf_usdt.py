"""USDT probes (sys/sdt.h) in a program the test builds: found, enabled, attached, arguments read."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import build_c_program, poll_until

from rbcc import BPF, USDT, USDTException

TICKS = 5

# Waits for a line on stdin (so the probes go in first), fires rbcc:tick TICKS times with (10*i, "tick-i"),
# prints "done", then waits for a second line.
TICKER_C = r"""
#include <stdio.h>
#include <sys/sdt.h>

int main(void) {
    char line[64], name[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 1; i <= TICKS; i++) {
        snprintf(name, sizeof name, "tick-%d", i);
        DTRACE_PROBE2(rbcc, tick, i * 10, name);
    }
    puts("done");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""

ON_TICK = r"""
struct tick_t { u32 pid; s64 value; char name[16]; };
BPF_PERF_OUTPUT(ticks);
int on_tick(struct pt_regs *ctx) {
    struct tick_t t = {};
    t.pid = bpf_get_current_pid_tgid() >> 32;
    bpf_usdt_readarg(1, ctx, &t.value);
    bpf_usdt_readarg_p(2, ctx, &t.name, sizeof(t.name));
    ticks.perf_submit(ctx, &t, sizeof(t));
    return 0;
}
"""


@pytest.fixture(scope="module")
def ticker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cpp = shutil.which("cpp")  # without it there is no gcc either, and the build below skips
    if cpp and subprocess.run([cpp, "-x", "c", "-"], input=b"#include <sys/sdt.h>\n", capture_output=True).returncode:
        pytest.skip("sys/sdt.h is missing (apt-get install systemtap-sdt-dev)")
    return build_c_program(tmp_path_factory.mktemp("usdt"), "ticker", TICKER_C, "-O1", f"-DTICKS={TICKS}")


@pytest.fixture
def child(ticker: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([str(ticker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_probes_of_a_binary_are_listed(ticker: Path) -> None:
    (probe,) = USDT(path=str(ticker)).enumerate_probes()
    assert (probe.provider, probe.name, probe.bin_path) == (b"rbcc", b"tick", str(ticker).encode())
    assert probe.num_locations == 1 and probe.num_arguments == 2
    assert probe.short_name() == "rbcc:tick"
    location = probe.get_location(0)
    assert location.address > 0 and str(location) == f"{ticker} 0x{location.address:x}"
    assert str(location.get_argument(0)).startswith("4 signed bytes @ ")
    assert str(location.get_argument(1)).startswith("8 unsigned bytes @ ")
    u = USDT(path=str(ticker))
    assert u.get_probe_arg_ctype("tick", 0) == "int32_t"
    assert u.get_probe_arg_ctype("tick", 1) == "uint64_t"  # the name: a pointer
    with pytest.raises(USDTException, match="no_such_probe"):
        u.enable_probe("no_such_probe", "on_tick")


def _ticks(b: BPF, child: subprocess.Popen[bytes]) -> list[tuple[int, int, bytes]]:
    assert child.stdin is not None and child.stdout is not None
    seen: list[tuple[int, int, bytes]] = []

    def on_tick(cpu: int, data: int, size: int) -> None:
        t = b["ticks"].event(data)
        seen.append((t.pid, t.value, t.name))

    b["ticks"].open_perf_buffer(on_tick)
    child.stdin.write(b"go\n")
    child.stdin.flush()
    assert child.stdout.readline() == b"done\n"
    assert poll_until(b.perf_buffer_poll, lambda: len(seen) >= TICKS)
    return seen


@pytest.mark.needs_root
def test_usdt_by_path_reads_the_arguments(ticker: Path, child: subprocess.Popen[bytes]) -> None:
    u = USDT(path=str(ticker))
    u.enable_probe(probe="tick", fn_name="on_tick")
    with BPF(text=ON_TICK, usdt_contexts=[u]) as b:
        assert b.num_open_uprobes() == 1
        seen = _ticks(b, child)
    assert seen == [(child.pid, 10 * i, b"tick-%d" % i) for i in range(1, TICKS + 1)]


@pytest.mark.needs_root
def test_usdt_by_pid_with_the_provider_named(ticker: Path, child: subprocess.Popen[bytes]) -> None:
    other = subprocess.Popen([str(ticker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        u = USDT(pid=child.pid)
        u.enable_probe(probe="rbcc:tick", fn_name="on_tick")
        assert [(fn, addr > 0) for _, fn, addr in u.enumerate_active_probes()] == [(b"on_tick", True)]
        with BPF(text=ON_TICK, usdt_contexts=[u]) as b:
            other.communicate(b"go\nbye\n", timeout=10)  # another process of the same binary: not seen
            seen = _ticks(b, child)
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    assert {pid for pid, _, _ in seen} == {child.pid}
    assert sorted(v for _, v, _ in seen) == [10 * i for i in range(1, TICKS + 1)]


COUNT_TICKS = r"""
BPF_ARRAY(ticks, u64, 1);
int on_tick(struct pt_regs *ctx) {
    ticks.atomic_increment(0);
    return 0;
}
"""


@pytest.mark.needs_root
def test_usdt_probe_whose_function_reads_no_argument(ticker: Path, child: subprocess.Popen[bytes]) -> None:
    # libbpf attaches USDT only to objects that have its USDT maps; this program never reads an argument
    u = USDT(path=str(ticker))
    u.enable_probe(probe="tick", fn_name="on_tick")
    with BPF(text=COUNT_TICKS, usdt_contexts=[u]) as b:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"done\n"
        assert b["ticks"][0].value == TICKS


def test_usdt_needs_a_pid_or_a_path() -> None:
    with pytest.raises(USDTException, match="pid or a binary path"):
        USDT()


# Three probes of different argument counts and types; `two` fires at two sites whose arguments live in
# different places. Prints "ready", waits for a line on stdin, fires each probe 3 times, prints "done",
# waits again.
SEVERAL_C = r"""
#include <stdio.h>
#include <sys/sdt.h>

static volatile long sink;

__attribute__((noinline)) static void elsewhere(long x, int y) {
    DTRACE_PROBE2(rbcc, two, x, y);
    sink += x + y;
}

int main(void) {
    char line[64];
    puts("ready");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (volatile int i = 0; i < 3; i++) {
        long a = 13 + i;
        int c = 5 + i;
        short d = 7;
        long long e = 1000 + i;
        DTRACE_PROBE2(rbcc, two, a, 40);
        DTRACE_PROBE1(rbcc, one, c);
        DTRACE_PROBE3(rbcc, three, d, e, a * 2);
        elsewhere(100 + i, -i);
    }
    puts("done");
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""

ON_SEVERAL = r"""
struct ev_t { u32 probe; s64 a, b, c; };
BPF_PERF_OUTPUT(evs);
int on_one(struct pt_regs *ctx) {
    struct ev_t e = {.probe = 1};
    bpf_usdt_readarg(1, ctx, &e.a);
    evs.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
int on_two(struct pt_regs *ctx) {
    struct ev_t e = {.probe = 2};
    bpf_usdt_readarg(1, ctx, &e.a);
    bpf_usdt_readarg(2, ctx, &e.b);
    evs.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
int on_three(struct pt_regs *ctx) {
    struct ev_t e = {.probe = 3};
    bpf_usdt_readarg(1, ctx, &e.a);
    bpf_usdt_readarg(2, ctx, &e.b);
    bpf_usdt_readarg(3, ctx, &e.c);
    evs.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
"""

SEVERAL_WANT = sorted(
    [(1, 5 + i, 0, 0) for i in range(3)]
    + [(2, 13 + i, 40, 0) for i in range(3)]
    + [(2, 100 + i, -i, 0) for i in range(3)]
    + [(3, 7, 1000 + i, 2 * (13 + i)) for i in range(3)]
)


@pytest.fixture(scope="module")
def several(ticker: Path) -> Path:  # ticker: sys/sdt.h is there
    return build_c_program(ticker.parent, "several", SEVERAL_C, "-O1")


def _several_events(b: BPF, proc: subprocess.Popen[bytes]) -> list[tuple[int, int, int, int]]:
    seen: list[tuple[int, int, int, int]] = []

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["evs"].event(data)
        seen.append((e.probe, e.a, e.b, e.c))

    b["evs"].open_perf_buffer(on_event)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == b"done\n"
    poll_until(b.perf_buffer_poll, lambda: len(seen) >= len(SEVERAL_WANT))
    return sorted(seen)


@pytest.mark.needs_root
@pytest.mark.parametrize("contexts", ["one", "one per probe"])
def test_several_probes_each_read_their_own_arguments(several: Path, contexts: str) -> None:
    # Each probe's function is loaded in an object of its own; libbpf's argument specs must stay each's.
    proc = subprocess.Popen([str(several)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # running main: its libraries are mapped (right after the exec, the process maps nothing yet)
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        probes = [("two", "on_two"), ("one", "on_one"), ("three", "on_three")]
        if contexts == "one":
            u = USDT(pid=proc.pid)
            for probe, fn in probes:
                u.enable_probe(probe=probe, fn_name=fn)
            usdts = [u]
        else:
            usdts = []
            for probe, fn in probes:
                u = USDT(path=str(several))
                u.enable_probe(probe=probe, fn_name=fn)
                usdts.append(u)
        with BPF(text=ON_SEVERAL, usdt_contexts=usdts) as b:
            assert _several_events(b, proc) == SEVERAL_WANT
    finally:
        proc.kill()
        proc.wait()
