"""What offcputime and offwaketime share: bcc gives the two tools the same options past -p/-t, the same
thread-state filter on the task switched out, and the same refusal of user stacks for kernel threads.

They differ in -p/-t (offcputime takes one id, offwaketime up to five) and in what they print, which
stays in each tool.
"""

from __future__ import annotations

import argparse
import sys

from . import common, pictures, sched, sched_stacks


def add_options(p: argparse.ArgumentParser, threads: argparse._MutuallyExclusiveGroup) -> None:
    """-u/-k into ``threads`` (the group the tool's own -p/-t are already in, so that only one of the
    four is given), then -U/-K, -d, -f, --stack-storage-size, the duration, -m/-M, --state and --svg, in
    the order bcc's -h lists them."""
    threads.add_argument("-u", "--user-threads-only", action="store_true", help="user threads only (no kernel threads)")
    threads.add_argument(
        "-k", "--kernel-threads-only", action="store_true", help="kernel threads only (no user threads)"
    )
    sched_stacks.add_stack_choice(p)
    p.add_argument("-d", "--delimited", action="store_true", help="insert delimiter between kernel/user stacks")
    p.add_argument("-f", "--folded", action="store_true", help="output folded format")
    sched_stacks.add_stack_storage_size(p, 1024)
    sched_stacks.add_duration(p)
    sched_stacks.add_block_times(p)
    p.add_argument(
        "--state",
        type=common.non_negative_int,
        help="filter on this thread state bitmask (eg, 2 == TASK_UNINTERRUPTIBLE) see include/linux/sched.h",
    )
    pictures.add_svg(p)


def user_stacks_of_kernel_threads(args: argparse.Namespace) -> bool:
    """Whether -k and -U are both given (then bcc's error is printed): kernel threads have no user
    stacks, so the tool would report nothing."""
    if args.kernel_threads_only and args.user_stacks_only:
        print("ERROR: Displaying user stacks for kernel threads doesn't make sense.", file=sys.stderr)
        return True
    return False


def fill(text: str, args: argparse.Namespace, thread_filter: str, task: str) -> str:
    """``text`` with its THREAD_FILTER (the tool's C condition for -p/-t/-u/-k), STATE_FILTER (--state
    on the C variable ``task``, the task switched out), stack getters (-U/-K) and the sizes and bounds of
    :func:`sched_stacks.fill_block_times`."""
    state = sched.task_state_field()
    if args.state is None:
        state_filter = "1"
    elif args.state == 0:
        state_filter = f"{task}->{state} == 0"
    else:
        state_filter = f"{task}->{state} & {args.state}"  # states are bit masks
    kernel, user = sched_stacks.stack_getters(args, "ctx")
    text = (
        text.replace("THREAD_FILTER", thread_filter)
        .replace("STATE_FILTER", state_filter)
        .replace("USER_STACK_GET", user)
        .replace("KERNEL_STACK_GET", kernel)
    )
    return sched_stacks.fill_block_times(text, args)
