"""futexctn: the C for its filters and keys, and live runs over a program of the test's own whose
threads wait 45 ms each for a pthread mutex another thread holds: five contentions of that lock, in
the 32 -> 63 msecs slot, with the waiting stack in glibc's lock code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from _bpfutil import build_c_program, run_interrupted
from _toolcheck import text_of

from rbcc.tools import futexctn

HOLDER = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *waiter(void *arg)
{
    pthread_mutex_lock(&lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

int main(void)
{
    printf("%d %p\n", getpid(), (void *)&lock);
    fflush(stdout);
    getchar();
    for (int i = 0; i < 5; i++) {
        pthread_t t;
        pthread_mutex_lock(&lock);
        pthread_create(&t, NULL, waiter, NULL);
        usleep(45000);  /* the waiter blocks in FUTEX_WAIT meanwhile */
        pthread_mutex_unlock(&lock);
        pthread_join(t, NULL);
    }
    printf("done\n");
    fflush(stdout);
    getchar();  /* alive while the tool symbolizes the stacks */
    return 0;
}
"""

LINE = re.compile(r"^(\S+)\[(\d+)\] lock (0x[0-9a-f]+) contended (\d+) times, (\d+) avg msecs")


def test_filters_and_keys() -> None:
    text = text_of(futexctn)
    assert "if (0)" in text and "if (w.uaddr != " not in text and "BPF_F_USER_STACK" in text
    assert "/ 1000;" in text
    text = text_of(futexctn, "-p", "12", "-l", "8187bb8", "-m", "-s")
    assert "if (pid != 12)" in text and "if (w.uaddr != 0x8187bb8ULL)" in text
    assert "key.pid_tgid >>= 32;" in text and "BPF_F_USER_STACK" not in text and "/ 1000000;" in text
    assert "if (tid != 5)" in text_of(futexctn, "-t", "5", "-p", "12")


def _run(tmp_path: Path, *options: str) -> tuple[str, int, str]:
    binary = build_c_program(tmp_path, "ctnholder", HOLDER, "-O1", "-pthread")
    prog = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert prog.stdin is not None and prog.stdout is not None
    try:
        pid, addr = prog.stdout.readline().split()

        def workload() -> None:
            prog.stdin.write("\n")  # type: ignore[union-attr]
            prog.stdin.flush()  # type: ignore[union-attr]
            assert prog.stdout.readline() == "done\n"  # type: ignore[union-attr]

        out, _ = run_interrupted(
            ["tool", "futexctn", "-m", "-p", pid, "-l", addr, *options],
            lambda h: h.startswith("Summarize futex contention latency"),
            workload,
        )
    finally:
        prog.kill()
        prog.wait()
    return out, int(pid), addr


def _slots(section: str) -> dict[int, int]:
    rows = (re.match(r"^\s*(\d+) -> (\d+)\s+: (\d+)", line) for line in section.splitlines())
    return {int(m.group(1)): int(m.group(3)) for m in rows if m and int(m.group(3))}


@pytest.mark.needs_root
def test_each_waiting_thread_with_its_stack_and_slot(tmp_path: Path) -> None:
    out, pid, addr = _run(tmp_path)
    sections = out.split("\n\n\n")[1:]
    heads = [LINE.match(s.strip("\n").splitlines()[0]) for s in sections]
    assert len(sections) == 5 and all(heads), out
    # one section per waiting thread (each a new thread), each waiting once on the lock
    assert len({int(m.group(2)) for m in heads if m}) == 5 and all(int(m.group(2)) != pid for m in heads if m), out
    assert all(m.group(1) == "ctnholder" and m.group(3) == addr and m.group(4) == "1" for m in heads if m), out
    waits = [_slots(s) for s in sections]
    # 45 ms each: 32 -> 63 msecs (one may run long on a loaded machine, but none waits less)
    assert sum(1 for w in waits if list(w) == [32]) >= 4 and all(min(w) >= 32 for w in waits), out
    stacks = [s.split("    -\n")[1] for s in sections]
    assert all("lll_lock_wait" in st or "pthread_mutex_lock" in st for st in stacks), out


@pytest.mark.needs_root
def test_summary_by_process(tmp_path: Path) -> None:
    out, pid, addr = _run(tmp_path, "-s")
    heads = [m for m in map(LINE.match, out.splitlines()) if m]
    assert [(m.group(1), int(m.group(2)), m.group(3), m.group(4)) for m in heads] == [("ctnholder", pid, addr, "5")], (
        out
    )
    assert "    -" not in out and 32 <= int(heads[0].group(5)) < 64 * 2, out
