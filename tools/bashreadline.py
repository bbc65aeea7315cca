#!/usr/bin/env python3
"""bashreadline: print the commands entered in every running bash shell (readline's return value)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc._tools import common

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool bashreadline                      # commands typed into bash (its own readline)
    rbcc tool bashreadline -s                   # readline in /lib/libreadline.so instead
    rbcc tool bashreadline -s /usr/lib/libreadline.so.8
"""

DEFAULT_SHARED = "/lib/libreadline.so"

# A uretprobe on readline(): its return value is the line typed, in the shell's memory. Other programs
# that use the same library also call readline(): only a task named "bash" counts.
BPF_TEXT = r"""
#include <linux/sched.h>

struct str_t {
    u32 pid;
    char str[80];
};

BPF_PERF_OUTPUT(events);

int printret(struct pt_regs *ctx) {
    const char *line = (const char *)PT_REGS_RC(ctx);
    if (!line)
        return 0;
    char comm[TASK_COMM_LEN] = {};
    bpf_get_current_comm(&comm, sizeof(comm));
    if (comm[0] != 'b' || comm[1] != 'a' || comm[2] != 's' || comm[3] != 'h' || comm[4] != 0)
        return 0;
    struct str_t data = {.pid = bpf_get_current_pid_tgid() >> 32};
    bpf_probe_read_user_str(&data.str, sizeof(data.str), line);
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("bashreadline", "Print entered bash commands from all running shells", EXAMPLES)
    p.add_argument(
        "-s",
        "--shared",
        nargs="?",
        const=DEFAULT_SHARED,
        help=f"specify the location of libreadline.so library. Default is {DEFAULT_SHARED}",
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure: no kernel needed); the options choose only where the probe goes."""
    return BPF_TEXT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("bashreadline", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    b.attach_uretprobe(name=args.shared or "/bin/bash", sym="readline", fn_name="printret")
    print("%-9s %-7s %s" % ("TIME", "PID", "COMMAND"), flush=True)

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        print("%-9s %-7d %s" % (common.strftime_now(), e.pid, e.str.decode("utf-8", "replace")), flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
