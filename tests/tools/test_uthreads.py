"""uthreads: the pthreads a C program of the test's own starts, each by its own thread id (which the
program prints) and its start routine; the Java thread probes' C."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _bpfutil import build_c_program, run_interrupted
from _toolcheck import text_of

from rbcc.tools import uthreads

THREADS = 3
# starts THREADS threads (one at a time) once a line arrives, each printing its id, then waits for EOF
THREADS_C = r"""
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

void *rbcc_worker(void *arg) {
    printf("%d\n", gettid());
    fflush(stdout);
    return arg;
}

int main(void) {
    char line[16];
    if (!fgets(line, sizeof line, stdin))
        return 1;
    for (int i = 0; i < THREADS; i++) {
        pthread_t t;
        pthread_create(&t, NULL, rbcc_worker, NULL);
        pthread_join(t, NULL);
    }
    /* alive until stdin closes: the tool names the start routine from this process's map */
    while (fgets(line, sizeof line, stdin))
        ;
    return 0;
}
"""


def test_generated_c_for_each_pthread_source_and_java() -> None:
    fallback = text_of(uthreads, "-l", "c", "42")
    assert "PT_REGS_PARM3(ctx)" in fallback and "TRACEPOINT_PROBE(task, task_newtask)" in fallback
    assert "(id >> 32) != 42" in fallback and "trace_start" not in fallback
    args = uthreads.build_parser().parse_args(["-l", "none", "42"])
    args.pthread_usdt = True
    usdt = uthreads.bpf_text(args)
    assert "bpf_usdt_readarg(2, ctx, &start_routine);" in usdt and "task_newtask" not in usdt
    java = text_of(uthreads, "-l", "java", "42")
    assert "int trace_start(struct pt_regs *ctx)" in java and "int trace_stop(struct pt_regs *ctx)" in java
    assert "bpf_usdt_readarg(2, ctx, &len);" in java and "bpf_usdt_readarg(4, ctx, &te.native_id);" in java


@pytest.mark.needs_root
def test_sees_the_threads_a_child_starts(tmp_path: Path) -> None:
    program = build_c_program(tmp_path, "threads", THREADS_C, "-O0", "-pthread", f"-DTHREADS={THREADS}")
    child = subprocess.Popen([str(program)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def go() -> None:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()

    header = lambda h: h.startswith(f"Tracing thread events in process {child.pid}")  # noqa: E731
    rows = lambda out: [line.split() for line in out.splitlines() if " pthread " in line]  # noqa: E731
    try:
        out, _ = run_interrupted(
            ["tool", "uthreads", "-l", "c", str(child.pid)], header, go, lambda out: len(rows(out)) >= THREADS
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.close()
        printed = child.stdout.read()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "TIME     ID               TYPE     DESCRIPTION" in out
    tids = printed.split()
    assert len(tids) == THREADS and str(child.pid) not in tids
    assert [r[1:3] for r in rows(out)] == [[tid, "pthread"] for tid in tids], out
    assert all(r[3:] == ["rbcc_worker", "[threads]"] for r in rows(out)), out
