"""wakeuptime: the C for its options, and live runs that see the test wake a child blocked on a pipe:
the test as waker, in pipe_write, the child as target, with the time it was blocked."""

from __future__ import annotations

import re
import threading
import time

import pytest
from _bpfutil import own_comm, run_interrupted
from _schedwork import child
from _toolcheck import run_rbcc, text_of

from rbcc.tools import wakeuptime

COMM = "rbcc-wakee"
WRITES = 20
READER = f"import ctypes, os\nctypes.CDLL(None).prctl(15, b'{COMM}', 0, 0, 0)\nwhile os.read(0, 1):\n    pass\n"


def _text(*argv: str) -> str:
    return text_of(wakeuptime, *argv)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "if (0)" in plain and "delta < 1 || delta > 18446744073709551615ULL" in plain
    assert "BPF_STACK_TRACE(stack_traces, 1024);" in plain
    assert "pid != 185" in _text("-p", "185") and "p->flags & PF_KTHREAD" in _text("-u")
    assert "delta < 10 || delta > 20ULL" in _text("-m", "10", "-M", "20")
    assert "BPF_STACK_TRACE(stack_traces, 8);" in _text("--stack-storage-size", "8")


def test_pid_and_user_only_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wakeuptime.main(["-p", "1", "-u"])
    assert "use either -p or -u." in capsys.readouterr().err


def _feed(stdin, writes: int, pause: float, stop: threading.Event | None = None) -> None:  # noqa: ANN001
    # one byte at a time, with a pause so the reader blocks again before each
    for _ in range(writes):
        if stop is not None and stop.is_set():
            return
        stdin.write(b"x")
        stdin.flush()
        time.sleep(pause)


@pytest.mark.needs_root
def test_the_test_wakes_the_child_it_feeds_through_a_pipe() -> None:
    with child(READER) as kid:
        out, _ = run_interrupted(
            ["tool", "wakeuptime", "-p", str(kid.pid)],
            lambda h: h == "Tracing blocked time (us) by kernel stack... Hit Ctrl-C to end.\n",
            lambda: _feed(kid.proc.stdin, WRITES, 0.01),
            lambda out: True,
        )
    assert out.rstrip().endswith("Detaching..."), out
    blocks = [b.splitlines() for b in out.split("\n\n") if "target:" in b]
    # -p: every target is the child
    assert blocks and all(b[0].split() == ["target:", COMM] for b in blocks), out
    ours = [b for b in blocks if b[-2].split() == ["waker:", own_comm().decode()]]
    assert ours, out
    frames = {line.split()[1] for b in ours for line in b[1:-2]}
    assert any(f.endswith("pipe_write") for f in frames) and "try_to_wake_up" in frames, out
    assert all(re.fullmatch(r" {4}[0-9a-f]{16} \S+", line) for b in ours for line in b[1:-2]), out
    # about 10 ms blocked before each of the writes
    assert sum(int(b[-1]) for b in ours) >= WRITES * 5000, out


@pytest.mark.needs_root
def test_folded_for_a_duration_has_waker_stack_then_target() -> None:
    with child(READER) as kid:
        stop = threading.Event()
        # until the tool is done (however long it takes to load), at most a minute
        feeder = threading.Thread(target=_feed, args=(kid.proc.stdin, 6000, 0.01, stop))
        feeder.start()
        try:
            out = run_rbcc("tool", "wakeuptime", "-f", "-p", str(kid.pid), "1")
        finally:
            stop.set()
            feeder.join()
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rows = [line.rsplit(" ", 1) for line in out.stdout.splitlines()]
    assert rows and all(len(r) == 2 and r[1].isdigit() for r in rows), out.stdout
    stacks = [r[0].split(";") for r in rows]
    assert all(s[-1] == COMM for s in stacks), out.stdout
    # the feeding thread's comm is the process's; its stack starts at the wakeup and reaches pipe_write
    ours = [(s, [f for f in s if f.endswith("pipe_write")]) for s in stacks if s[0] == own_comm().decode()]
    ours = [(s, w[0]) for s, w in ours if w]
    assert ours and all(s.index("try_to_wake_up") < s.index(write) for s, write in ours), out.stdout
