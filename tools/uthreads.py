#!/usr/bin/env python3
"""uthreads: trace thread creation in a process: pthreads (C) and Java threads (USDT), as they start.

pthreads come from libc's (or libpthread's) USDT probe pthread_start where the C library has it; where
it does not (Debian's glibc is built without its probes), a uprobe on pthread_create() names the start
routine and the task:task_newtask tracepoint the new thread's id. Java threads come from hotspot's
thread__start/thread__stop USDT probes (-l java).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rbcc import BPF, USDT
from rbcc._tools import common
from rbcc._tools.languages import LANGUAGES, read_string, resolve_language
from rbcc.errors import AttachError

__all__ = ["bpf_text", "build_parser", "has_pthread_usdt", "main"]

EXAMPLES = """examples:
    rbcc tool uthreads -l java 185    # trace Java threads in process 185
    rbcc tool uthreads -l none 12245  # trace only pthreads in process 12245
"""

THREAD_LANGUAGES = ["c", "java"]

HEADER = r"""
struct thread_event_t {
    u64 runtime_id;
    u64 native_id;
    char type[8];
    char name[80];
};

BPF_PERF_OUTPUT(threads);
"""

# the C library's own probe, in the new thread: argument 2 is the start routine
PTHREAD_USDT = r"""
int trace_pthread(struct pt_regs *ctx) {
    struct thread_event_t te = {.type = "pthread"};
    u64 start_routine = 0;
    te.native_id = bpf_get_current_pid_tgid() & 0xFFFFFFFF;
    bpf_usdt_readarg(2, ctx, &start_routine);
    te.runtime_id = start_routine;   // the start routine, named in user space
    threads.perf_submit(ctx, &te, sizeof(te));
    return 0;
}
"""

# without that probe: pthread_create() says the start routine, and the clone it makes (a task with
# CLONE_THREAD, created in the caller's context) the new thread's id
PTHREAD_UPROBE = r"""
#define CLONE_THREAD_FLAG 0x00010000

BPF_HASH(creating, u32, u64);   // caller's tid -> start routine

int trace_pthread_create(struct pt_regs *ctx) {
    u32 tid = bpf_get_current_pid_tgid();
    u64 start_routine = PT_REGS_PARM3(ctx);
    creating.update(&tid, &start_routine);
    return 0;
}

TRACEPOINT_PROBE(task, task_newtask) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = id;
    if ((id >> 32) != TARGET || !(args->clone_flags & CLONE_THREAD_FLAG))
        return 0;
    u64 *start_routine = creating.lookup(&tid);
    if (!start_routine)
        return 0;   // a thread made without pthread_create, or before tracing began
    struct thread_event_t te = {.type = "pthread"};
    te.native_id = args->pid;
    te.runtime_id = *start_routine;
    creating.delete(&tid);
    threads.perf_submit(args, &te, sizeof(te));
    return 0;
}
"""

JAVA = r"""
int FUNC(struct pt_regs *ctx) {
    struct thread_event_t te = {.type = "TYPE"};
    u64 nameptr = 0;
READ_NAME
    bpf_usdt_readarg(ID_ARG, ctx, &te.runtime_id);
    bpf_usdt_readarg(NATIVE_ARG, ctx, &te.native_id);
    threads.perf_submit(ctx, &te, sizeof(te));
    return 0;
}
"""


def build_parser(prog: str = "uthreads", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Trace thread creation/destruction events in high-level languages.", EXAMPLES)
    p.add_argument(
        "-l",
        "--language",
        choices=THREAD_LANGUAGES + ["none"],
        default=language,
        help="language to trace (none for pthreads only)",
    )
    p.add_argument("pid", type=int, help="process id to attach to")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode: print the BPF program (for debugging purposes)"
    )
    return p


def has_pthread_usdt(usdt: USDT) -> bool:
    """Whether the process's C library has the pthread_start USDT probe."""
    return any(p.name == b"pthread_start" for p in usdt.enumerate_probes())


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure): pthreads through the USDT probe if ``args.pthread_usdt`` (found in the process
    at run time), else through pthread_create() and task_newtask; Java's thread probes with -l java."""
    text = HEADER
    if getattr(args, "pthread_usdt", False):
        text += PTHREAD_USDT
    else:
        text += PTHREAD_UPROBE.replace("TARGET", str(int(args.pid)))
    if args.language == "java":
        threads = LANGUAGES["java"].threads
        assert threads is not None
        for func, kind in (("trace_start", "start"), ("trace_stop", "stop")):
            text += (
                JAVA.replace("FUNC", func)
                .replace("TYPE", kind)
                .replace("READ_NAME\n", read_string("te.name", "nameptr", threads.name_arg, threads.name_len_arg))
                .replace("NATIVE_ARG", str(threads.native_id_arg))
                .replace("ID_ARG", str(threads.id_arg))
            )
    return text


def main(argv: Sequence[str] | None = None, prog: str = "uthreads", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def _attach_pthread_create(b: BPF, pid: int) -> None:
    # glibc 2.34 moved pthread into libc (libpthread is left as a stub): try the old home first
    for lib in ("pthread", "c"):
        try:
            b.attach_uprobe(name=lib, sym="pthread_create", fn_name="trace_pthread_create", pid=pid)
            return
        except AttachError:
            if lib == "c":
                raise


def run(args: argparse.Namespace) -> int:
    if not args.language:
        args.language = resolve_language(args, THREAD_LANGUAGES)
    usdt = USDT(pid=args.pid)
    args.pthread_usdt = has_pthread_usdt(usdt)
    text = bpf_text(args)
    if args.verbose or args.ebpf:
        print(text)
        if args.ebpf:
            return 0
    if args.pthread_usdt:
        usdt.enable_probe_or_bail("pthread_start", "trace_pthread")
    if args.language == "java":
        threads = LANGUAGES["java"].threads
        assert threads is not None
        usdt.enable_probe_or_bail(threads.start, "trace_start")
        usdt.enable_probe_or_bail(threads.stop, "trace_stop")
    uses_usdt = args.pthread_usdt or args.language == "java"
    b = BPF(text=text, usdt_contexts=[usdt] if uses_usdt else [])
    if not args.pthread_usdt:
        _attach_pthread_create(b, args.pid)
    lang = args.language if args.language not in (None, "none") else "none"
    start = time.time()

    def on_thread(cpu: int, data: int, size: int) -> None:
        e = b["threads"].event(data)
        kind = e.type.decode("utf-8", "replace")
        if kind == "pthread":
            name = b.sym(e.runtime_id, args.pid, show_module=True).decode("utf-8", "replace")
            tid = str(e.native_id)
        else:
            name = e.name.decode("utf-8", "replace")
            tid = "R=%s/N=%s" % (e.runtime_id, e.native_id)
        print(("%-8.3f %-16s %-8s %-30s" % (time.time() - start, tid, kind, name)).rstrip(), flush=True)

    b["threads"].open_perf_buffer(on_thread)
    # the header says tracing has begun: the buffer is open by then, so no event is lost
    print("Tracing thread events in process %d (language: %s)... Ctrl-C to quit." % (args.pid, lang))
    print("%-8s %-16s %-8s %-30s" % ("TIME", "ID", "TYPE", "DESCRIPTION"), flush=True)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
