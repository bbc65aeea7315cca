#!/usr/bin/env python3
"""sigsnoop: trace standard and real-time signals, with sender, signal, target and result.

System-wide it reads the signal:signal_generate tracepoint, as libbpf-tools' sigsnoop does: every
signal the kernel generates (kill(), timers, faults, SIGCHLD at a child's exit...), RESULT being the
errno the signal carries (0 unless the sender put one in it). With -k it traces the kill(), tkill()
and tgkill() syscalls instead (their tracepoints), RESULT being what the syscall returned (-3 for
ESRCH...); the target's name is then taken at the signal_generate the syscall causes (empty when
the kill failed before making a signal).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.utils import printb

__all__ = ["bpf_text", "build_parser", "main", "signal_name"]

EXAMPLES = """examples:
    rbcc tool sigsnoop             # trace signals system-wide
    rbcc tool sigsnoop -k          # trace signals issued by the kill syscalls only
    rbcc tool sigsnoop -x          # trace failed signals only
    rbcc tool sigsnoop -p 1216     # only trace PID 1216 (the sender)
    rbcc tool sigsnoop -s 1,9,15   # trace signals 1, 9 and 15
    rbcc tool sigsnoop -n          # signal names instead of numbers
"""

# What both sources report.
COMMON_C = r"""
#include <linux/sched.h>

struct event_t {
    u32 pid;
    int tpid;
    int sig;
    int ret;
    char comm[TASK_COMM_LEN];
    char tcomm[TASK_COMM_LEN];
};

BPF_PERF_OUTPUT(events);

static __always_inline int skip(u32 pid, int sig)
{
    if (sig < 1 || sig > 64)
        return SIG_UNKNOWN_SKIP;
    return (PID_SKIP) || !(SIGNALS & (1ULL << (sig - 1)));
}
"""

# Every signal generated, at the moment the kernel makes it.
GENERATE_C = r"""
TRACEPOINT_PROBE(signal, signal_generate) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    int sig = args->sig;
    if (skip(pid, sig))
        return 0;
    int ret = args->errno;
    if (FAILED_ONLY && ret == 0)
        return 0;
    struct event_t e = {.pid = pid, .tpid = args->pid, .sig = sig, .ret = ret};
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    __builtin_memcpy(&e.tcomm, args->comm, sizeof(e.tcomm));
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""

# The kill syscalls, from entry (who to, which signal) to exit (the result); the signal_generate
# within the syscall names the target.
KILL_C = r"""
BPF_HASH(pending, u32, struct event_t, 10240);

static __always_inline int enter(int tpid, int sig)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = (u32)id;
    if (skip(pid, sig))
        return 0;
    struct event_t e = {.pid = pid, .tpid = tpid, .sig = sig};
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    pending.update(&tid, &e);
    return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct event_t *e = pending.lookup(&tid);
    if (e == 0)
        return 0;
    e->ret = ret;
    if (!FAILED_ONLY || ret < 0)
        events.perf_submit(ctx, e, sizeof(*e));
    pending.delete(&tid);
    return 0;
}

TRACEPOINT_PROBE(signal, signal_generate) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct event_t *e = pending.lookup(&tid);
    if (e != 0 && e->tpid == args->pid)
        __builtin_memcpy(&e->tcomm, args->comm, sizeof(e->tcomm));
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_kill) { return enter(args->pid, args->sig); }
TRACEPOINT_PROBE(syscalls, sys_exit_kill) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_tkill) { return enter(args->pid, args->sig); }
TRACEPOINT_PROBE(syscalls, sys_exit_tkill) { return leave(args, args->ret); }
TRACEPOINT_PROBE(syscalls, sys_enter_tgkill) { return enter(args->pid, args->sig); }
TRACEPOINT_PROBE(syscalls, sys_exit_tgkill) { return leave(args, args->ret); }
"""

ALL_SIGNALS = (1 << 64) - 1


def signals_arg(text: str) -> int:
    """argparse type of -s: a comma-separated list of signal numbers (1-64), as a bit mask."""
    mask = 0
    for token in text.split(","):
        try:
            sig = int(token)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid signal: {token!r}") from None
        if not 1 <= sig <= 64:
            raise argparse.ArgumentTypeError(f"invalid signal: {token!r} (1 to 64)")
        mask |= 1 << (sig - 1)
    return mask


def signal_name(sig: int) -> str:
    """libbpf-tools' name of a signal: SIGHUP ... SIGSYS, SIGNAL-32 ... SIGNAL-64 for the real-time ones."""
    if 1 <= sig < 32:
        try:
            return signal.Signals(sig).name
        except ValueError:
            pass
    return "SIGNAL-%d" % sig if sig >= 32 else "N/A"


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("sigsnoop", "Trace standard and real-time signals.", EXAMPLES)
    p.add_argument("-x", "--failed", action="store_true", help="Trace failed signals only.")
    p.add_argument("-k", "--kill", action="store_true", help="Trace signals issued by kill syscall only.")
    p.add_argument("-p", "--pid", type=common.positive_int, help="Process ID to trace")
    p.add_argument("-s", "--signal", type=signals_arg, help="Signals to trace (a comma-separated list).")
    p.add_argument("-n", "--name", action="store_true", help="Output signal name instead of signal number.")
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = COMMON_C + (KILL_C if args.kill else GENERATE_C)
    mask = args.signal if args.signal is not None else ALL_SIGNALS
    return (
        text.replace("PID_SKIP", common.pid_condition("pid", args.pid))
        .replace("SIG_UNKNOWN_SKIP", "1" if args.signal is not None else "0")
        .replace("SIGNALS", "%#xULL" % mask)
        .replace("FAILED_ONLY", "1" if args.failed else "0")
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("sigsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        print("%-8s %-7s %-16s %-12s %-7s %-16s %-6s" % ("TIME", "PID", "COMM", "SIG", "TPID", "TCOMM", "RESULT"))
        sys.stdout.flush()

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            sig = signal_name(e.sig).encode() if args.name else b"%d" % e.sig
            printb(
                b"%-8s %-7d %-16s %-12s %-7d %-16s %-6d"
                % (common.strftime_now().encode(), e.pid, e.comm, sig, e.tpid, e.tcomm, e.ret)
            )

        b["events"].open_perf_buffer(on_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
