"""uprobes and uretprobes on a freshly built user program, on the real kernel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import build_c_program, poll_until

from rbcc import BPF, AttachError

pytestmark = pytest.mark.needs_root

CALLS = 5
TOTAL = sum(i + 10 * i for i in range(1, CALLS + 1))  # what the child prints

# Waits for a line on stdin (so the probes go in first), calls add(i, 10*i) for i = 1..CALLS, prints the
# total, then waits for a second line before exiting (so its addresses can still be symbolized).
ADDER_C = r"""
#include <stdio.h>

__attribute__((noinline)) int add(int a, int b) { return a + b; }

int main(void) {
    char line[64];
    int total = 0;
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 1; i <= CALLS; i++)
        total += add(i, 10 * i);
    printf("%d\n", total);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 0;
    return 0;
}
"""

PROBES = r"""
#include <uapi/linux/ptrace.h>
struct call_t { u32 pid; u32 is_return; s64 a; s64 b; u64 ip; };
BPF_PERF_OUTPUT(calls);
int on_entry(struct pt_regs *ctx) {
    struct call_t c = {};
    c.pid = bpf_get_current_pid_tgid() >> 32;
    if (c.pid != CHILD)
        return 0;
    c.a = (int)PT_REGS_PARM1(ctx);
    c.b = (int)PT_REGS_PARM2(ctx);
    c.ip = PT_REGS_IP(ctx);
    calls.perf_submit(ctx, &c, sizeof(c));
    return 0;
}
int on_return(struct pt_regs *ctx) {
    struct call_t c = {};
    c.pid = bpf_get_current_pid_tgid() >> 32;
    if (c.pid != CHILD)
        return 0;
    c.is_return = 1;
    c.a = (int)PT_REGS_RC(ctx);
    calls.perf_submit(ctx, &c, sizeof(c));
    return 0;
}
"""


@pytest.fixture(scope="module")
def adder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_c_program(tmp_path_factory.mktemp("uprobe"), "adder", ADDER_C, "-O0", "-g", f"-DCALLS={CALLS}")


@pytest.fixture
def child(adder: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([str(adder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_uprobe_and_uretprobe_see_arguments_and_results(adder: Path, child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None and child.stdout is not None
    with BPF(text=PROBES, cflags=[f"-DCHILD={child.pid}"]) as b:
        b.attach_uprobe(name=str(adder), sym="add", fn_name="on_entry")
        b.attach_uretprobe(name=str(adder), sym="add", fn_name="on_return")
        assert b.num_open_uprobes() == 2
        entries: list[tuple[int, int, int]] = []
        returns: list[int] = []
        pids: set[int] = set()

        def on_call(cpu: int, data: int, size: int) -> None:
            c = b["calls"].event(data)
            pids.add(c.pid)
            if c.is_return:
                returns.append(c.a)
            else:
                entries.append((c.a, c.b, c.ip))

        b["calls"].open_perf_buffer(on_call)
        child.stdin.write(b"go\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"%d\n" % TOTAL
        assert poll_until(b.perf_buffer_poll, lambda: len(entries) >= CALLS and len(returns) >= CALLS)
        b.perf_buffer_poll(100)

        # The child is still alive (waiting for its second line): its probed address names `add`.
        ips = {ip for _, _, ip in entries}
        assert len(ips) == 1
        (ip,) = ips
        assert BPF.sym(ip, child.pid) == b"add"
        assert BPF.sym(ip, child.pid, show_offset=True, show_module=True) == b"add+0x0 [adder]"

        b.detach_uprobe(name=str(adder), sym="add")
        b.detach_uretprobe(name=str(adder), sym="add")
        assert b.num_open_uprobes() == 0

    assert pids == {child.pid}
    # Events from several CPUs may interleave: compare as sorted lists.
    assert sorted((a, bb) for a, bb, _ in entries) == [(i, 10 * i) for i in range(1, CALLS + 1)]
    assert sorted(returns) == [11 * i for i in range(1, CALLS + 1)]


COUNT_BY_PID = r"""
#include <uapi/linux/ptrace.h>
BPF_HASH(calls, u32, u64);
int on_entry(struct pt_regs *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    calls.increment(pid);
    return 0;
}
"""


def test_uprobe_attached_to_one_pid_ignores_others(adder: Path) -> None:
    procs = [subprocess.Popen([str(adder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(2)]
    try:
        with BPF(text=COUNT_BY_PID) as b:
            b.attach_uprobe(name=str(adder), sym="add", fn_name="on_entry", pid=procs[0].pid)
            outs = [p.communicate(b"go\nbye\n", timeout=5)[0] for p in procs]
            counts = {k.value: v.value for k, v in b["calls"].items()}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert outs == [b"%d\n" % TOTAL] * 2
    assert counts == {procs[0].pid: CALLS}


def test_uprobe_by_regex_attaches_every_matching_function(adder: Path) -> None:
    with BPF(text=COUNT_BY_PID) as b:
        b.attach_uprobe(name=str(adder), sym_re="(add|main)$", fn_name="on_entry")
        assert b.num_open_uprobes() == 2
        with pytest.raises(AttachError, match="no function"):
            b.attach_uprobe(name=str(adder), sym_re="no_such_function", fn_name="on_entry")
        proc = subprocess.Popen([str(adder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        out = proc.communicate(b"go\nbye\n", timeout=5)[0]
        counts = {k.value: v.value for k, v in b["calls"].items()}
    assert out == b"%d\n" % TOTAL
    # main once, add CALLS times.
    assert counts.get(proc.pid) == CALLS + 1


CALLS_OF_CHILD = r"""
#include <uapi/linux/ptrace.h>
BPF_ARRAY(calls, u64, 1);
int on_entry(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != CHILD)
        return 0;
    calls.atomic_increment(0);
    return 0;
}
"""

STRLEN_CALLER = "import ctypes, sys\nsys.stdin.readline()\nlibc = ctypes.CDLL('libc.so.6')\n" + (
    "for _ in range(500): libc.strlen(b'rbcc')\n"
)


@pytest.mark.parametrize("how", [{"sym": "strlen"}, {"sym_re": "^strlen$"}])
def test_uprobe_on_an_ifunc_lands_on_the_implementation(how: dict[str, str]) -> None:
    # libc's strlen is an IFUNC: its symbol is a resolver run once; calls go to a CPU-specific copy
    proc = subprocess.Popen([sys.executable, "-c", STRLEN_CALLER], stdin=subprocess.PIPE)
    try:
        with BPF(text=CALLS_OF_CHILD, cflags=[f"-DCHILD={proc.pid}"]) as b:
            b.attach_uprobe(name="c", fn_name="on_entry", **how)
            proc.communicate(b"go\n", timeout=30)
            count = b["calls"][0].value
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert count >= 500  # the interpreter may call strlen as well


def _count_calls_of_add(binary: Path) -> int:
    """Runs ``binary`` (an adder) with a uprobe on ``add``; how often the probe saw the child call it."""
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        with BPF(text=CALLS_OF_CHILD, cflags=[f"-DCHILD={proc.pid}"]) as b:
            b.attach_uprobe(name=str(binary), sym="add", fn_name="on_entry")
            out = proc.communicate(b"go\nbye\n", timeout=5)[0]
            count = b["calls"][0].value
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == b"%d\n" % TOTAL
    return count


def test_uprobe_on_a_function_named_only_in_the_split_debug_file(tmp_path: Path) -> None:
    # Stripped as distributions ship it: `add` is in no symbol table of the binary, only in the debug
    # file its .gnu_debuglink names. Not position-independent, so the function's address (0x401...)
    # and its offset in the file differ: the probe goes at the offset, or it would never fire.
    objcopy = shutil.which("objcopy")
    if objcopy is None:
        pytest.skip("objcopy is not installed (binutils): cannot split the test program's debug file")
    full = build_c_program(tmp_path, "adder-full", ADDER_C, "-O0", "-g", "-no-pie", f"-DCALLS={CALLS}")
    subprocess.run([objcopy, "--only-keep-debug", full, tmp_path / "adder.debug"], check=True)
    stripped = tmp_path / "adder"
    subprocess.run([objcopy, "--strip-all", full, stripped], check=True)
    with pytest.raises(AttachError):  # without its debug file, nothing names `add`
        _count_calls_of_add(stripped)
    subprocess.run([objcopy, f"--add-gnu-debuglink={tmp_path / 'adder.debug'}", stripped], check=True)
    assert _count_calls_of_add(stripped) == CALLS


LIBC_DEBUG = Path("/usr/lib/debug/.build-id")


def test_uprobe_on_a_local_function_of_libc_from_its_debug_package() -> None:
    # __libc_start_call_main is static in glibc: its name is in libc6-dbg's debug file alone. Every
    # program calls it once, on its way to main.
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    if not Path(libc).exists() or not LIBC_DEBUG.is_dir():
        pytest.skip("no libc debug file: libc6-dbg is not installed")
    with BPF(text=COUNT_BY_PID) as b:
        b.attach_uprobe(name="c", sym="__libc_start_call_main", fn_name="on_entry")
        child = subprocess.Popen(["/bin/true"])
        assert child.wait() == 0
        counts = {k.value: v.value for k, v in b["calls"].items()}
    assert counts.get(child.pid) == 1, counts
