"""offwaketime: the C for its options, and a live run over a child of the test's own in which one
thread blocks reading a pipe until another, after 0.3 s, writes to it: the reader's stack blocked in
the pipe read, "--", the writer's stack waking it from the pipe write, the time in between."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env, run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc.tools import offwaketime

FOLDED = re.compile(r"^(.*) (\d+)$")

# The reader thread (comm rbcc-offreader) blocks in read(2) on a pipe; the main thread (rbcc-offwriter)
# writes to it after 0.3 s, ROUNDS times.
CHILD = r"""
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None)
r, w = os.pipe()

def reader():
    libc.prctl(15, b"rbcc-offreader", 0, 0, 0)
    for _ in range(ROUNDS):
        os.read(r, 1)

libc.prctl(15, b"rbcc-offwriter", 0, 0, 0)
sys.stdin.readline()
t = threading.Thread(target=reader)
t.start()
for _ in range(ROUNDS):
    time.sleep(0.3)
    os.write(w, b"x")
t.join()
print("done", flush=True)
sys.stdin.readline()
"""


def test_options_in_the_c() -> None:
    plain = text_of(offwaketime)
    assert "if ((1) && (1))" in plain and "if (!((1) && (1)))" in plain
    assert "stack_traces.get_stackid(ctx, BPF_F_USER_STACK)" in plain
    assert "((tgid == 185) || (tgid == 186))" in text_of(offwaketime, "-p", "185,186")
    assert "((pid == 188))" in text_of(offwaketime, "-t", "188")
    assert "delta < 1000 || delta > 9000ULL" in text_of(offwaketime, "-m", "1000", "-M", "9000")
    assert ".u_stack_id = -1" in text_of(offwaketime, "-K") and "woke.k_stack_id = -1;" in text_of(offwaketime, "-U")
    assert "p->__state & 2" in text_of(offwaketime, "--state", "2")


def test_user_stacks_of_kernel_threads_are_refused() -> None:
    assert offwaketime.main(["-k", "-U"]) == 2


def _child(rounds: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("ROUNDS", str(rounds))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )


def _run(*options: str) -> tuple[str, int]:
    child = _child(3)
    assert child.stdin is not None and child.stdout is not None

    def workload() -> None:
        child.stdin.write("go\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        assert child.stdout.readline() == "done\n"  # type: ignore[union-attr]

    try:
        out, _ = run_interrupted(
            ["tool", "offwaketime", "-p", str(child.pid), "-m", "100000", *options],
            lambda h: h.startswith("Tracing blocked time"),
            workload,
        )
    finally:
        child.kill()
        child.wait()
    return out, child.pid


@pytest.mark.needs_root
def test_folded_reader_blocked_in_the_pipe_woken_by_the_writer(tmp_path: Path) -> None:
    # -f prints nothing before its report, so nothing says when tracing began: the child writes every
    # 0.3 s for 8 s, and the tool traces 6 s of it (after it compiled and attached)
    child = _child(27)
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    svg = tmp_path / "ow.svg"
    try:
        done = run_rbcc("tool", "offwaketime", "-f", "-p", str(child.pid), "-m", "100000", "--svg", str(svg), "6")
    finally:
        child.kill()
        child.wait()
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    rows = []
    for line in done.stdout.splitlines():
        m = FOLDED.match(line)
        assert m, f"not a folded line: {line!r}"
        rows.append((m[1].split(";"), int(m[2])))
    ours = [(frames, us) for frames, us in rows if frames[0] == "rbcc-offreader" and frames[-1] == "rbcc-offwriter"]
    assert ours, done.stdout
    frames, _ = max(ours, key=lambda row: row[1])
    target, waker = frames[: frames.index("--")], frames[frames.index("--") + 1 :]
    assert any("pipe_read" in f for f in target) and target[-1] == "__schedule", done.stdout
    assert waker[0] == "try_to_wake_up" and any("pipe_write" in f for f in waker), done.stdout
    # reads blocked about 0.3 s each, for at most the 6 s traced
    total = sum(us for _, us in ours)
    assert 250_000 <= total <= 6_500_000 and all(us >= 100_000 for _, us in ours), done.stdout
    assert svg.read_text().startswith("<?xml") and "rbcc-offreader" in svg.read_text()


@pytest.mark.needs_root
def test_bcc_layout_with_user_stacks() -> None:
    out, pid = _run("-d")
    assert out.startswith("Tracing blocked time (us) by user + kernel off-CPU and waker stack... Hit Ctrl-C to end.")
    blocks = [b.strip("\n") for b in out.split("\n\n")]
    ours = [
        b
        for b in blocks
        if re.search(r"^ +waker: +rbcc-offwriter ", b, re.M) and re.search(r"^ +target: +rbcc-offreader ", b, re.M)
    ]
    assert ours, out
    lines = [line.strip() for line in max(ours, key=lambda b: int(b.split()[-1])).splitlines()]
    assert lines[0].startswith("waker:") and lines[0].endswith(str(pid)), lines
    split = next(i for i, line in enumerate(lines) if line.split() == ["--", "--"])
    waker, target = lines[1:split], lines[split + 1 : -2]
    assert "-" in waker and "-" in target, lines  # -d: between user and kernel stacks
    assert waker[waker.index("-") + 1 :][-1] == "try_to_wake_up", lines  # root first, down to the wakeup
    assert target[0] == "__schedule" and any("pipe_read" in f for f in target), lines
    assert lines[-1].isdigit() and int(lines[-1]) >= 100_000, lines


def test_bad_pid_list_is_refused() -> None:
    assert run_rbcc("tool", "offwaketime", "-p", "x").returncode == 2
