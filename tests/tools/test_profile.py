"""profile: the C for its options, its header, and live runs that sample a C program the test runs:
its busy loop in folded stacks (libc's frame named from libc6-dbg, as bcc names it), its reads of
/dev/zero in kernel stacks, inlined functions with --inline, and JIT code named by a perf map."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import build_c_program, run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import profile

# Built with frame pointers in every function (leaf ones too), so the kernel can walk the user stack,
# and -O0 so no call becomes a jump. libc's read() keeps no frame pointer: a stack taken inside it
# skips its caller, rbcc_read_zero, and goes on with main.
BUSY_C = r"""
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

static char buf[1 << 16];

__attribute__((noinline)) void rbcc_spin_inner(volatile unsigned long *n) {
    for (int i = 0; i < 1000; i++)
        (*n)++;
}

__attribute__((noinline)) void rbcc_busy_loop(void) {
    volatile unsigned long n = 0;
    for (;;)
        rbcc_spin_inner(&n);
}

__attribute__((noinline)) void rbcc_read_zero(int fd) {
    for (;;)
        read(fd, buf, sizeof(buf));
}

int main(int argc, char **argv) {
    prctl(PR_SET_NAME, argv[1]);
    if (argc > 2)
        rbcc_read_zero(open("/dev/zero", O_RDONLY));
    rbcc_busy_loop();
    return 1;
}
"""

FOLDED = re.compile(r"^([^;]+(?:;[^;]+)*) (\d+)$")


def _args(*argv: str):  # noqa: ANN202
    return profile.build_parser().parse_args(list(argv))


def _text(*argv: str) -> str:
    return profile.bpf_text(_args(*argv))


def test_options_in_the_c() -> None:
    plain = _text()
    assert "if (pid == 0)" in plain and "if (!(1))" in plain
    assert "BPF_STACK_TRACE(stack_traces, 16384);" in plain
    assert "stack_traces.get_stackid(&ctx->regs, BPF_F_USER_STACK)" in plain
    assert "stack_traces.get_stackid(&ctx->regs, 0)" in plain
    assert "key.user_stack_id = -1;" in _text("-K") and "key.kernel_stack_id = -1;" in _text("-U")
    assert "tgid == 1 || tgid == 2" in _text("-p", "1,2") and "pid == 7" in _text("-L", "7")
    assert "if (0)" in _text("-I")
    assert "BPF_STACK_TRACE(stack_traces, 100);" in _text("--stack-storage-size", "100")
    assert "cgroupset" in _text("--cgroupmap", "/sys/fs/bpf/x")


def test_header_and_sampling_as_bcc() -> None:
    assert profile.header(_args()) == "Sampling at 49 Hertz of all threads by user + kernel stack... Hit Ctrl-C to end."
    assert profile.sampling(_args("-F", "99")) == (99, 0) and profile.sampling(_args("-c", "1000")) == (0, 1000)
    assert (
        profile.header(_args("-c", "1000", "-p", "185", "-K", "-C", "1", "5"))
        == "Sampling at every 1000 events of PID [185] by kernel stack on CPU#1 for 5 secs."
    )
    assert "TID [7] by user stack" in profile.header(_args("-L", "7", "-U"))


@pytest.mark.parametrize("argv", [["-p", "1", "-L", "2"], ["-U", "-K"], ["-F", "9", "-c", "9"], ["0"], ["-p", "x"]])
def test_conflicting_or_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        _args(*argv)


@contextlib.contextmanager
def _program(tmp_path: Path, comm: str, *mode: str) -> Iterator[subprocess.Popen[bytes]]:
    binary = build_c_program(tmp_path, "busy", BUSY_C, "-O0", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer")
    child = subprocess.Popen([str(binary), comm, *mode])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def _folded(out: str) -> list[tuple[list[str], int]]:
    rows = []
    for line in out.splitlines():
        m = FOLDED.match(line)
        assert m, f"not a folded stack line: {line!r}"
        rows.append((m[1].split(";"), int(m[2])))
    return rows


@pytest.mark.needs_root
def test_folded_stacks_of_the_busy_loop_for_a_duration(tmp_path: Path) -> None:
    with _program(tmp_path, "rbcc-busy") as child:
        out = run_rbcc("tool", "profile", "-f", "-F", "99", "-p", str(child.pid), "2")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rows = _folded(out.stdout)  # -f: no header, every line "comm;frame;... count"
    assert rows and {frames[0] for frames, _ in rows} == {"rbcc-busy"}, out.stdout
    samples = sum(n for _, n in rows)
    assert samples >= 40, out.stdout  # 99 Hz for 2 s, on a machine that others share
    # outermost frame first: main calls the loop, which calls the inner function
    in_loop = sum(n for frames, n in rows if "main;rbcc_busy_loop" in ";".join(frames))
    assert in_loop >= 0.8 * samples, out.stdout


@pytest.mark.needs_root
def test_kernel_stacks_of_reads_in_the_multi_line_format(tmp_path: Path) -> None:
    with _program(tmp_path, "rbcc-zero", "read") as child:
        deadline: list[float] = []
        out, _ = run_interrupted(
            ["tool", "profile", "-K", "-F", "99", "-p", str(child.pid)],
            lambda h: h == f"Sampling at 99 Hertz of PID [{child.pid}] by kernel stack... Hit Ctrl-C to end.\n",
            lambda: deadline.append(time.monotonic() + 1.5),
            lambda out: time.monotonic() > deadline[0],
        )
    blocks = [b for b in out.split("\n\n") if f"rbcc-zero ({child.pid})" in b]
    assert blocks, out
    frames = [line.strip() for b in blocks for line in b.splitlines()]
    # the child is always inside read(2): its stacks go through the read syscall to /dev/zero's reader
    assert "ksys_read" in frames and "do_syscall_64" in frames, out
    assert all(re.search(r"^ {8}\d+$", b, re.M) for b in blocks)
    assert all(re.search(r"^    -{1} {16}rbcc-zero \(\d+\)$", b, re.M) for b in blocks)


@pytest.mark.needs_root
def test_delimited_annotated_folded_stacks_join_user_and_kernel(tmp_path: Path) -> None:
    with _program(tmp_path, "rbcc-zero", "read") as child:
        out = run_rbcc("tool", "profile", "-f", "-d", "-a", "-F", "99", "-p", str(child.pid), "1")
    assert out.returncode == 0, out.stderr
    both = [(frames, n) for frames, n in _folded(out.stdout) if "-" in frames]
    assert both, out.stdout
    in_read = 0
    for frames, n in both:
        user, kernel = frames[1 : frames.index("-")], frames[frames.index("-") + 1 :]
        assert "main" in user and all(f.endswith("_[k]") for f in kernel), frames
        in_read += n if "ksys_read_[k]" in kernel else 0
    # a few samples land on the way into the syscall, before read's own functions
    assert in_read >= 0.5 * sum(n for _, n in both), out.stdout


# Two functions that spin through the same inner loop, one twice as long as the other each time round.
SPLIT_C = r"""
#include <sys/prctl.h>

__attribute__((noinline)) void rbcc_spin(volatile unsigned long *n, int k) {
    for (int i = 0; i < k; i++)
        (*n)++;
}

__attribute__((noinline)) void rbcc_spin_twice(volatile unsigned long *n) { rbcc_spin(n, 200000); }

__attribute__((noinline)) void rbcc_spin_once(volatile unsigned long *n) { rbcc_spin(n, 100000); }

int main(int argc, char **argv) {
    prctl(PR_SET_NAME, argv[1]);
    volatile unsigned long n = 0;
    for (;;) {
        rbcc_spin_twice(&n);
        rbcc_spin_once(&n);
    }
}
"""


@contextlib.contextmanager
def _split_program(tmp_path: Path, comm: str) -> Iterator[subprocess.Popen[bytes]]:
    binary = build_c_program(
        tmp_path, "split", SPLIT_C, "-O0", "-fno-omit-frame-pointer", "-mno-omit-leaf-frame-pointer"
    )
    child = subprocess.Popen([str(binary), comm])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def _svg_widths(path: Path) -> dict[str, float]:
    """Each frame's name (its tooltip's) → its boxes' widths added up, in percent of the graph."""
    ns = "{http://www.w3.org/2000/svg}"
    widths: dict[str, float] = {}
    for g in ET.parse(path).getroot().iter(f"{ns}g"):
        title, rect = g.find(f"{ns}title"), g.find(f"{ns}rect")
        if title is not None and rect is not None and title.text:
            name = title.text.rsplit(" (", 1)[0]
            widths[name] = widths.get(name, 0.0) + float(rect.attrib["width"].rstrip("%"))
    return widths


@pytest.mark.needs_root
def test_svg_draws_the_spins_at_their_share_of_the_samples(tmp_path: Path) -> None:
    svg = tmp_path / "cpu.svg"
    with _split_program(tmp_path, "rbcc-split") as child:
        out = run_rbcc("tool", "profile", "-F", "199", "-p", str(child.pid), "--svg", str(svg), "3")
    assert out.returncode == 0, out.stderr
    assert "flame graph of" in out.stderr and str(svg) in out.stderr
    widths = _svg_widths(svg)  # an SVG that parses as XML, with the test's own functions in it
    assert {"rbcc-split", "main", "rbcc_spin_twice", "rbcc_spin_once", "rbcc_spin"} <= set(widths), widths
    ratio = widths["rbcc_spin_twice"] / widths["rbcc_spin_once"]
    assert 1.5 <= ratio <= 2.7, widths  # 2:1 of the CPU, sampled ~600 times
    assert "Sampling at 199 Hertz of PID" in svg.read_text()  # the header as its subtitle


BCC_PROFILE = Path("/usr/sbin/profile-bpfcc")
BCCPATCH = Path(__file__).resolve().parents[3] / "shared" / "tools" / "bccpatch"


def _bcc_profile(*argv: str) -> str:
    """bcc's own profile (Debian's bpfcc-tools) run with ``argv``; skips where it cannot run here."""
    if not BCC_PROFILE.exists() or not (BCCPATCH / "sitecustomize.py").exists():
        pytest.skip("bcc's profile-bpfcc or ../shared/tools/bccpatch is missing: nothing to compare with")
    if not Path(f"/lib/modules/{os.uname().release}/build/Makefile").exists():
        pytest.skip("bcc cannot compile here: run ../shared/tools/bcc-anchor.sh once (it links kernel headers)")
    env = {**os.environ, "PYTHONPATH": str(BCCPATCH)}
    done = subprocess.run(["/usr/bin/python3", str(BCC_PROFILE), *argv], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _shape(line: str, own: str) -> tuple[str, ...]:
    """A folded line's layout, what bcc's -f format fixes: the comm, the test program's own frames in
    order (other user frames are the symbolizer's business), the delimiter, and whether kernel frames
    carry _[k]."""
    m = FOLDED.match(line)
    assert m, f"not a folded stack line: {line!r}"
    frames = m[1].split(";")
    after = frames[frames.index("-") + 1 :] if "-" in frames else []
    kernel = ("k-annotated",) if after and all(f.endswith("_[k]") for f in after) else ("kernel",) * bool(after)
    ours = tuple(f for f in frames[1:] if f.startswith(own) or f == "main")
    return (frames[0], *ours, *(("-",) if "-" in frames else ()), *kernel)


@pytest.mark.needs_root
@pytest.mark.parametrize("options", [["-f"], ["-f", "-a", "-d"]], ids=["folded", "annotated-delimited"])
def test_folded_lines_have_bcc_s_format(tmp_path: Path, options: list[str]) -> None:
    with _split_program(tmp_path, "rbcc-split") as child:
        argv = [*options, "-F", "99", "-p", str(child.pid), "2"]
        ours = run_rbcc("tool", "profile", *argv)
        theirs = _bcc_profile(*argv)
    assert ours.returncode == 0, ours.stderr
    for out in (ours.stdout, theirs):
        lines = out.splitlines()
        assert lines and out.endswith("\n"), out
        counts = [int(line.rsplit(" ", 1)[1]) for line in lines]
        assert counts == sorted(counts), out  # least sampled first, as bcc sorts them
    # line by line the same layout; the most sampled stacks (the spins) the same in both
    shapes = [{_shape(line, "rbcc_spin") for line in out.splitlines()} for out in (ours.stdout, theirs)]
    spins = {s for s in shapes[1] if "rbcc_spin" in s}
    assert spins and spins <= shapes[0], (ours.stdout, theirs)


@pytest.mark.needs_root
def test_folded_stacks_name_libcs_frame_from_its_debug_file(tmp_path: Path) -> None:
    with _program(tmp_path, "rbcc-busy") as child:
        time.sleep(0.1)
        with open(f"/proc/{child.pid}/maps") as maps:
            libc = next(line.split()[5] for line in maps if len(line.split()) == 6 and "/libc.so" in line)
        notes = subprocess.run(["readelf", "-n", libc], capture_output=True, text=True).stdout
        build_id = notes.split("Build ID:")[1].split()[0]
        if not Path(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug").exists():
            pytest.skip("libc6-dbg is not installed: libc's local functions have no name (make test-deps)")
        out = run_rbcc("tool", "profile", "-f", "-U", "-F", "99", "-p", str(child.pid), "1")
    assert out.returncode == 0, out.stderr
    rows = [frames for frames, _ in _folded(out.stdout) if "main" in frames]
    assert rows, out.stdout
    # before: rbcc-busy;[unknown];main;... where bcc prints libc's function that calls main
    assert all(frames[:3] == ["rbcc-busy", "__libc_start_call_main", "main"] for frames in rows), out.stdout


INLINED_C = r"""
static volatile unsigned long sink;
static inline __attribute__((always_inline)) void rbcc_inner_step(void) { sink += 3; }
static inline __attribute__((always_inline)) void rbcc_outer_step(void) { rbcc_inner_step(); sink ^= 5; }
__attribute__((noinline)) static void rbcc_hidden_leaf(void) {
    for (;;)
        rbcc_outer_step();
}
int main(void) { rbcc_hidden_leaf(); }
"""


@pytest.mark.needs_root
def test_inline_shows_the_functions_inlined_in_user_frames(tmp_path: Path) -> None:
    binary = build_c_program(tmp_path, "rbcc-inl", INLINED_C, "-g", "-O2", "-fno-omit-frame-pointer")
    child = subprocess.Popen([str(binary)])
    try:
        time.sleep(0.1)
        out = run_rbcc("tool", "profile", "-f", "-U", "-a", "--inline", "-F", "99", "-p", str(child.pid), "1")
        plain = run_rbcc("tool", "profile", "-f", "-U", "-F", "99", "-p", str(child.pid), "1")
    finally:
        child.kill()
        child.wait()
    assert out.returncode == 0 and plain.returncode == 0, out.stderr + plain.stderr
    rows = _folded(out.stdout)
    samples = sum(n for _, n in rows)
    # outermost first: the function, then what is inlined in it, marked _[i] (-a) as flamegraph.pl colours it
    inlined = ";rbcc_hidden_leaf;rbcc_outer_step_[i];rbcc_inner_step_[i]"
    assert sum(n for frames, n in rows if inlined in ";".join(frames)) >= 0.3 * samples, out.stdout
    # without --inline, bcc's frames
    assert plain.stdout and all(f[-1] == "rbcc_hidden_leaf" for f, _ in _folded(plain.stdout)), plain.stdout


JIT_C = r"""
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
int main(void) {
    /* inc %rax; jmp back to it: a spinning "JIT-compiled" function */
    static const unsigned char code[] = {0x48, 0xff, 0xc0, 0xeb, 0xfb};
    unsigned char *jit = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(jit, code, sizeof(code));
    printf("%p\n", (void *)jit);
    fflush(stdout);
    ((void (*)(void))jit)();
    return 0;
}
"""


@pytest.mark.needs_root
def test_folded_stacks_name_jit_code_from_its_perf_map(tmp_path: Path) -> None:
    binary = build_c_program(tmp_path, "rbcc-jit", JIT_C, "-O1", "-fno-omit-frame-pointer")
    child = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    perf_map = Path(f"/tmp/perf-{child.pid}.map")
    try:
        assert child.stdout is not None
        jit = int(child.stdout.readline(), 16)
        perf_map.write_text(f"{jit:x} 5 rbcc_jit_spin\n")
        out = run_rbcc("tool", "profile", "-f", "-U", "-F", "99", "-p", str(child.pid), "1")
    finally:
        child.kill()
        child.wait()
        perf_map.unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr
    rows = _folded(out.stdout)
    assert rows and all(frames[-1] == "rbcc_jit_spin" for frames, _ in rows), out.stdout
