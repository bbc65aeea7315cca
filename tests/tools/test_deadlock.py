"""deadlock: the cycle search, the C for its options, and a live run on a program of the test's own whose
two threads take the same two mutexes in opposite orders, one after the other (so it never hangs):
the tool names the inversion with the functions that took each mutex and where each thread was made."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from _bpfutil import build_c_program
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import deadlock


def test_find_cycle() -> None:
    assert deadlock.find_cycle([]) is None
    assert deadlock.find_cycle([(1, 2), (2, 3), (1, 3)]) is None
    assert deadlock.find_cycle([(1, 2), (2, 1)]) == [(1, 2), (2, 1)]
    cycle = deadlock.find_cycle([(5, 6), (1, 2), (2, 3), (3, 1), (3, 4)])
    assert cycle is not None and sorted(cycle) == [(1, 2), (2, 3), (3, 1)]
    # each edge of the cycle leads to the next
    assert all(a[1] == b[0] for a, b in zip(cycle, cycle[1:] + cycle[:1]))


def test_c_for_the_options() -> None:
    text = text_of(deadlock, "181", "-t", "100", "-e", "200")
    assert "id >> 32 != 181" in text
    assert "BPF_HASH(held, u32, struct held_t, 100)" in text
    assert "BPF_HASH(edges, struct edge_key_t, struct edge_t, 200)" in text
    assert "MAX_HELD" not in text and "TARGET_PID" not in text


def test_symbol_lists_must_name_something() -> None:
    args = deadlock.build_parser().parse_args(["1", "--lock-symbols", "a, b"])
    assert args.lock_symbols == ["a", "b"] and args.unlock_symbols == ["pthread_mutex_unlock"]
    with pytest.raises(SystemExit):
        deadlock.build_parser().parse_args(["1", "--lock-symbols", ","])


INVERSION = r"""
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

pthread_mutex_t mutex_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t mutex_b = PTHREAD_MUTEX_INITIALIZER;

__attribute__((noinline)) void *take_a_then_b(void *arg) {
    pthread_mutex_lock(&mutex_a);
    pthread_mutex_lock(&mutex_b);
    pthread_mutex_unlock(&mutex_b);
    pthread_mutex_unlock(&mutex_a);
    return arg;
}

__attribute__((noinline)) void *take_b_then_a(void *arg) {
    pthread_mutex_lock(&mutex_b);
    pthread_mutex_lock(&mutex_a);
    pthread_mutex_unlock(&mutex_a);
    pthread_mutex_unlock(&mutex_b);
    return arg;
}

int main(void) {
    char line[8];
    printf("%p %p\n", (void *)&mutex_a, (void *)&mutex_b);
    fflush(stdout);
    if (!fgets(line, sizeof line, stdin))
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, take_a_then_b, NULL);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, take_b_then_a, NULL);
    pthread_join(t, NULL);
    printf("done\n");
    fflush(stdout);
    sleep(60);
    return 0;
}
"""


@pytest.mark.needs_root
def test_finds_the_inversion_of_two_threads(tmp_path: Path) -> None:
    binary = build_c_program(tmp_path, "inversion", INVERSION, "-O0", "-fno-omit-frame-pointer", "-pthread")
    target = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    graph = tmp_path / "graph.json"
    try:
        assert target.stdin is not None and target.stdout is not None
        mutex_a, mutex_b = (int(v, 16) for v in target.stdout.readline().split())
        tool = spawn_rbcc("tool", "deadlock", str(target.pid), "--dump-graph", str(graph))
        assert tool.stdout is not None
        assert tool.stdout.readline() == "Tracing... Hit Ctrl-C to end.\n"
        target.stdin.write("go\n")
        target.stdin.flush()
        assert target.stdout.readline() == "done\n"
        out, err = tool.communicate(timeout=30)
    finally:
        target.kill()
        target.wait()
    # it stops at the first cycle, with status 1, as bcc's
    assert tool.returncode == 1, err
    assert "Potential Deadlock Detected!" in out, out
    cycle_line = next(line for line in out.splitlines() if line.startswith("Cycle in lock order graph: "))
    assert f"0x{mutex_a:016x}" in cycle_line and f"0x{mutex_b:016x}" in cycle_line, cycle_line
    # each acquisition's stack names the lock function, then the function of the test that called it
    blocks = out.split("\n\n")
    took = [b for b in blocks if " acquired here while holding " in b]
    assert len(took) == 2, out
    callers = {b.splitlines()[2].split()[-1] for b in took}
    assert callers == {"take_a_then_b", "take_b_then_a"}, out
    assert all(b.splitlines()[1].endswith(" pthread_mutex_lock") for b in took), out
    created = [b for b in blocks if b.startswith("Thread ") and f" created by Thread {target.pid} " in b]
    assert len(created) == 2 and all(" main" in b for b in created), out
    links = json.loads(graph.read_text())["links"]
    assert {(link["source"], link["target"]) for link in links} == {(mutex_a, mutex_b), (mutex_b, mutex_a)}
