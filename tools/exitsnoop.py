#!/usr/bin/env python3
"""exitsnoop: trace process termination (exit, fatal signal), with age and exit status."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool exitsnoop                # trace all process termination
    rbcc tool exitsnoop -x             # trace only fails, exclude exit(0)
    rbcc tool exitsnoop -t             # include timestamps (local time)
    rbcc tool exitsnoop --utc          # include timestamps (UTC)
    rbcc tool exitsnoop -p 181         # only trace PID 181
    rbcc tool exitsnoop --label=exit   # label each output line with 'exit'
    rbcc tool exitsnoop --per-thread   # trace per thread termination
"""

# sched_process_exit fires in the exiting task itself, after exit_code is set, so the current task
# carries everything: its start time, its status (code << 8 | core flag | signal) and its parent.
BPF_TEXT = r"""
#include <linux/sched.h>

struct data_t {
    u64 start_time;
    u64 exit_time;
    u32 pid;
    u32 tid;
    u32 ppid;
    int exit_code;
    u32 sig_info;
    char task[TASK_COMM_LEN];
};

BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(sched, sched_process_exit) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (PID_FILTER || EXIT_FILTER)
        return 0;
    struct data_t data = {};
    data.start_time = task->start_time;
    data.exit_time = bpf_ktime_get_ns();
    data.pid = task->tgid;
    data.tid = task->pid;
    data.ppid = task->real_parent->tgid;
    data.exit_code = task->exit_code >> 8;
    data.sig_info = task->exit_code & 0xFF;
    bpf_get_current_comm(&data.task, sizeof(data.task));
    events.perf_submit(args, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("exitsnoop", "Trace all process termination (exit, fatal signal)", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp (local time default)")
    p.add_argument("--utc", action="store_true", help="include timestamp in UTC (-t implied)")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("--label", help="label each line")
    p.add_argument("-x", "--failed", action="store_true", help="trace only fails, exclude exit(0)")
    p.add_argument("--per-thread", action="store_true", help="trace per thread termination")
    return p


def _pid_filter(args: argparse.Namespace) -> str:
    # Without --per-thread only a process's last word counts: the exit of its main thread.
    if args.pid is not None:
        if args.per_thread:
            return f"task->tgid != {args.pid}"
        return f"!(task->tgid == {args.pid} && task->pid == task->tgid)"
    return "0" if args.per_thread else "task->pid != task->tgid"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return BPF_TEXT.replace("PID_FILTER", _pid_filter(args)).replace(
        "EXIT_FILTER", "task->exit_code == 0" if args.failed else "0"
    )


def signal_name(signum: int) -> str:
    """A signal's name without "SIG" (bcc's spelling), or "unknown"."""
    try:
        return signal.Signals(signum).name[3:]
    except ValueError:
        return "unknown"


def status(exit_code: int, sig_info: int) -> str:
    """bcc's EXIT_CODE column: "0", "code N", or "signal N (NAME)" with ", core dumped"."""
    if sig_info == 0:
        return "0" if exit_code == 0 else "code %d" % exit_code
    text = ""
    sig = sig_info & 0x7F
    if sig:
        text += "signal %d (%s)" % (sig, signal_name(sig))
    if sig_info & 0x80:
        text += ", core dumped "
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.utc:
        args.timestamp = True
    return common.guard("exitsnoop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    header = ""
    if args.timestamp:
        header += "%-13s" % ("TIME-" + ("UTC" if args.utc else time.strftime("%Z")))
    if args.label is not None:
        header += "%-6s" % "LABEL"
    print(
        header + "%-16s %-7s %-7s %-7s %-7s %-10s" % ("PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE"), flush=True
    )

    done = False

    def on_event(cpu: int, data: int, size: int) -> None:
        nonlocal done
        e = b["events"].event(data)
        out = ""
        if args.timestamp:
            now = datetime.now(timezone.utc) if args.utc else datetime.now()
            out += "%-13s" % now.strftime("%H:%M:%S.%f")[:-3]
        if args.label is not None:
            out += "%-6s" % (args.label or "exit")
        age = (e.exit_time - e.start_time) / 1e9
        out += "%-16s %-7d %-7d %-7d %-7.2f " % (e.task.decode(errors="replace"), e.pid, e.ppid, e.tid, age)
        print(out + status(e.exit_code, e.sig_info), flush=True)
        # bcc's -p watches one process: its end ends the tool
        done = args.pid is not None

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b, until=lambda: done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
