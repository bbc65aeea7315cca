#!/usr/bin/env python3
"""kvmexit: count KVM guest exits by reason, per process or thread (vCPU).

The kvm:kvm_exit tracepoint, as bcc (which prefers its raw form: the counts are the same). Intel (VMX)
and AMD (SVM) exits both: the exit reason's name comes from the tracepoint's own format, which lists
the names the running kernel knows for each (bcc's list is Intel's only and stops at TPAUSE).
Counts are kept per thread in the kernel (a per-CPU hash, summed when printed). It needs /dev/kvm and
the kvm module's tracepoints; a KVM without them (none loaded; a paravirtual one that fires no
kvm_exit, like kvm_pvm) shows no exits.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence

from rbcc._tools import common
from rbcc.errors import KernelFeatureError

__all__ = ["bpf_text", "build_parser", "exit_reason_names", "main"]

EXAMPLES = """examples:
    rbcc tool kvmexit                     # Display kvm_exit_reason and its statistics in real-time until Ctrl-C
    rbcc tool kvmexit 5                   # Display in real-time after sleeping 5s
    rbcc tool kvmexit -p 3195281          # Collapse all tids for pid 3195281, exit reasons sorted descending
    rbcc tool kvmexit -p 3195281 20       # the same, displayed after sleeping 20s
    rbcc tool kvmexit -p 3195281 -v 0     # Display only vcpu0 for pid 3195281, descending sort by default
    rbcc tool kvmexit -p 3195281 -a       # Display all tids for pid 3195281
    rbcc tool kvmexit -t 395490           # Display only for tid 395490 with exit reasons sorted in descending order
    rbcc tool kvmexit -T '395490,395491'  # Display for a union like {395490, 395491}
"""

BPF_TEXT = r"""
struct exit_key_t {
    u64 pid_tgid;
    u32 isa;
    u32 reason;
};

BPF_PERCPU_HASH(exits, struct exit_key_t, u64, 10240);

TRACEPOINT_PROBE(kvm, kvm_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32;
    u32 pid = (u32)id;
    if (THREAD_FILTER)
        return 0;
    struct exit_key_t key = {.pid_tgid = id, .isa = args->isa, .reason = args->exit_reason};
    // VMX keeps flags above the basic reason
    if (key.isa == 1)
        key.reason &= 0xffff;
    u64 zero = 0;
    u64 *count = exits.lookup_or_try_init(&key, &zero);
    if (count)
        (*count)++;
    return 0;
}
"""

KVM_ISA_VMX = 1
PAIR = re.compile(r'\{\s*([0-9a-fx+\s]+?)\s*,\s*"([^"]+)"\s*\}')


def exit_reason_names(fmt: str) -> dict[int, dict[int, str]]:
    """isa (1: VMX, 2: SVM) -> exit reason -> name, from the print fmt of kvm:kvm_exit's format."""
    line = next((x for x in fmt.splitlines() if x.startswith("print fmt:")), "")
    vmx, sep, svm = line.partition(": __print_symbolic(REC->exit_reason,")
    found: dict[int, dict[int, str]] = {1: {}, 2: {}}
    for isa, text in ((1, vmx), (2, svm if sep else "")):
        for number, name in PAIR.findall(text):
            found[isa][sum(int(part, 0) for part in number.split("+"))] = name
    return found


def tid_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("must be valid integer") from None


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("kvmexit", "Display kvm_exit_reason and its statistics at a timed interval", EXAMPLES)
    p.add_argument("duration", nargs="?", default=99999999, type=int, help="show delta for next several seconds")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    ex = p.add_mutually_exclusive_group()
    ex.add_argument("-t", "--tid", type=int, help="trace this TID only")
    ex.add_argument(
        "-T", "--tids", type=tid_list, help="trace a comma separated series of tids with no space in between"
    )
    ex.add_argument("-v", "--vcpu", type=int, help="trace this vcpu only")
    ex.add_argument("-a", "--alltids", action="store_true", help="trace all tids for this pid")
    return p


def thread_filter(args: argparse.Namespace) -> str:
    """A C condition on locals ``tgid`` and ``pid`` (the thread id), true for exits to skip."""
    if args.tid is not None:
        return f"pid != {int(args.tid)}"
    if args.tids:
        return " && ".join(f"pid != {int(t)}" for t in args.tids)
    if args.pid is not None:
        return f"tgid != {int(args.pid)}"
    return "0"


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: -v must have become -t first; see vcpu_thread)."""
    return BPF_TEXT.replace("THREAD_FILTER", thread_filter(args))


def vcpu_thread(pid: int, vcpu: int) -> int | None:
    """The thread of process ``pid`` that runs vCPU ``vcpu`` (QEMU names it "CPU N/KVM")."""
    wanted = f"CPU {vcpu}/"
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm.startswith(wanted) or comm == f"CPU {vcpu}":
            return int(tid)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("kvmexit", lambda: run(args))


def context(args: argparse.Namespace, vcpu_tid: int | None) -> tuple[str, str]:
    """(what is traced, the header's leading columns), as bcc words them."""
    if args.vcpu is not None:
        return f"PID {args.pid} VCPU {args.vcpu}", ""
    if args.tid is not None:
        return f"TID {args.tid}", ""
    if args.tids:
        return "TIDS %s" % [str(t) for t in args.tids], "TIDS     "
    if args.pid is not None:
        if args.alltids:
            return f"PID {args.pid} and its all threads", "TID      "
        return f"PID {args.pid}", ""
    return "all threads", "PID      TID      "


def run(args: argparse.Namespace) -> int:
    from rbcc import _core

    if args.vcpu is not None or args.alltids:
        if args.pid is None:
            raise KernelFeatureError("-v and -a need -p PID")
    vcpu_tid = None
    if args.vcpu is not None and not args.ebpf:
        vcpu_tid = vcpu_thread(args.pid, args.vcpu)
        if vcpu_tid is None:
            raise KernelFeatureError(f"There's no vCPU {args.vcpu} for PID {args.pid}.")
        args.tid = vcpu_tid
    if not args.ebpf and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise KernelFeatureError(
            "needs KVM (/dev/kvm is missing or not usable): load the kvm module "
            "(modprobe kvm_intel or kvm_amd) on a machine with virtualization"
        )
    fmt_path = os.path.join(_core.tracefs(), "events/kvm/kvm_exit/format")
    if not args.ebpf and not os.path.exists(fmt_path):
        raise KernelFeatureError("no kvm:kvm_exit tracepoint: the kvm module is not loaded (modprobe kvm)")
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with open(fmt_path) as f:
        names = exit_reason_names(f.read())
    what, lead = context(args, vcpu_tid)
    with b:
        if args.duration < 99999999:
            print(
                f"Display kvm exit reasons and statistics for {what} after sleeping {args.duration} secs.", flush=True
            )
        else:
            print(f"Display kvm exit reasons and statistics for {what}... Hit Ctrl-C to end.", flush=True)
        try:
            time.sleep(args.duration)
        except KeyboardInterrupt:
            print()
        counts: dict[tuple[int, int, str], int] = {}
        for k, v in b["exits"].items():
            name = names.get(k.isa, {}).get(k.reason, str(k.reason))
            key = (k.pid_tgid >> 32, k.pid_tgid & 0xFFFFFFFF, name)
            counts[key] = counts.get(key, 0) + sum(v)
        print("%s%-35s %s" % (lead, "KVM_EXIT_REASON", "COUNT"))
        report(args, counts)
    return 0


def report(args: argparse.Namespace, counts: dict[tuple[int, int, str], int]) -> None:
    if args.tid is not None or (args.pid is not None and not args.alltids and not args.tids):
        # one thread, or a process's threads collapsed: by count, descending
        total: dict[str, int] = {}
        for (_, _, name), n in counts.items():
            total[name] = total.get(name, 0) + n
        for name, n in sorted(total.items(), key=lambda kv: kv[1], reverse=True):
            print("%-35s %-8u" % (name, n))
        return
    for (tgid, tid, name), n in sorted(counts.items()):
        if args.alltids or args.tids:
            print("%-8u %-35s %-8u" % (tid, name, n))
        else:
            print("%-8u %-8u %-35s %-8u" % (tgid, tid, name, n))


if __name__ == "__main__":
    sys.exit(main())
