#!/usr/bin/env python3
"""capable: trace security capability checks (cap_capable), with the capability and the process.

The check is probed where this kernel allows, in this order: fentry on cap_capable, a kprobe on it, or
the capability:cap_capable tracepoint (Linux 6.13+). The probes on the function see its options, so
they tell audited checks from the others and show INSETID; the tracepoint has no options: from it
every check is shown (-v changes nothing) and AUDIT/INSETID read "N/A". Without any of the three the
tool says so in one line.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence

from rbcc import BPF, _core
from rbcc._tools import common
from rbcc.containers import filter_by_containers
from rbcc.errors import KernelFeatureError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool capable             # trace capability checks
    rbcc tool capable -v          # verbose: include non-audit checks
    rbcc tool capable -p 181      # only trace PID 181
    rbcc tool capable -K          # add kernel stacks to trace
    rbcc tool capable -U          # add user-space stacks to trace
    rbcc tool capable -x          # extra fields: show TID and INSETID columns
    rbcc tool capable --unique    # don't repeat stacks for the same pid or cgroup
    rbcc tool capable --cgroupmap mappath  # only trace cgroups in this BPF map
    rbcc tool capable --mntnsmap mappath   # only trace mount namespaces in the map
"""

# include/uapi/linux/capability.h
CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]

BPF_COMMON = r"""
#include <linux/sched.h>

// cap_capable()'s options (include/linux/security.h)
#define CAP_OPT_NOAUDIT 0b10
#define CAP_OPT_INSETID 0b100

struct data_t {
    u32 tgid;
    u32 pid;
    u32 uid;
    int cap;
    int audit;      // -1: not known (the tracepoint has no options)
    int insetid;
    char comm[TASK_COMM_LEN];
    int kernel_stack_id;
    int user_stack_id;
};

BPF_PERF_OUTPUT(events);

#if UNIQUE
struct repeat_t {
    int cap;
    u32 tgid;
    u64 cgroupid;
    int kernel_stack_id;
    int user_stack_id;
};
BPF_HASH(seen, struct repeat_t, u64);
#endif

#if KERNEL_STACKS || USER_STACKS
BPF_STACK_TRACE(stacks, 2048);
#endif

static __always_inline int record(void *ctx, int cap, int audit, int insetid) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (PID_SKIP || tgid == SELF)
        return 0;
    if (!VERBOSE && audit == 0)
        return 0;
    if (container_should_be_filtered())
        return 0;
    struct data_t data = {.tgid = tgid, .pid = (u32)pid_tgid, .cap = cap, .audit = audit, .insetid = insetid};
    data.uid = (u32)bpf_get_current_uid_gid();
#if KERNEL_STACKS
    data.kernel_stack_id = stacks.get_stackid(ctx, 0);
#endif
#if USER_STACKS
    data.user_stack_id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
#endif
#if UNIQUE
    struct repeat_t repeat = {.cap = cap, .kernel_stack_id = data.kernel_stack_id,
                              .user_stack_id = data.user_stack_id};
#if BY_CGROUP
    repeat.cgroupid = bpf_get_current_cgroup_id();
#else
    repeat.tgid = tgid;
#endif
    if (seen.lookup(&repeat))
        return 0;
    u64 zero = 0;
    seen.update(&repeat, &zero);
#endif
    bpf_get_current_comm(&data.comm, sizeof(data.comm));
    events.perf_submit(ctx, &data, sizeof(data));
    return 0;
}
"""

# cap_capable(const struct cred *cred, struct user_namespace *targ_ns, int cap, unsigned int opts)
BPF_SOURCES = {
    "fentry": r"""
KFUNC_PROBE(cap_capable, const struct cred *cred, struct user_namespace *targ_ns, int cap, unsigned int opts) {
    return record(ctx, cap, (opts & CAP_OPT_NOAUDIT) == 0, (opts & CAP_OPT_INSETID) != 0);
}
""",
    "kprobe": r"""
int trace_cap_capable(struct pt_regs *ctx) {
    int cap = (int)PT_REGS_PARM3(ctx);
    unsigned int opts = (unsigned int)PT_REGS_PARM4(ctx);
    return record(ctx, cap, (opts & CAP_OPT_NOAUDIT) == 0, (opts & CAP_OPT_INSETID) != 0);
}
""",
    "tracepoint": r"""
TRACEPOINT_PROBE(capability, cap_capable) {
    return record(args, args->cap, -1, -1);
}
""",
}

MISSING = (
    "capability checks need fentry or a kprobe on cap_capable, or the capability:cap_capable tracepoint "
    "(Linux 6.13+); this kernel has none of them"
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("capable", "Trace security capability checks", EXAMPLES)
    p.add_argument("-v", "--verbose", action="store_true", help="include non-audit checks")
    p.add_argument("-p", "--pid", type=int, help="trace this PID only")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-x", "--extra", action="store_true", help="show extra fields in TID and INSETID columns")
    common.add_containers(p)
    p.add_argument("--unique", action="store_true", help="don't repeat stacks for the same pid or cgroup")
    return p


def bpf_text(args: argparse.Namespace, source: str = "tracepoint", self_pid: int = 0) -> str:
    """The C for these options and probe ``source`` (fentry, kprobe or tracepoint), leaving out the
    tool's own process ``self_pid`` (pure: no kernel needed)."""
    defines = {
        "UNIQUE": int(args.unique),
        "BY_CGROUP": int(bool(args.cgroupmap)),
        "KERNEL_STACKS": int(args.kernel_stack),
        "USER_STACKS": int(args.user_stack),
    }
    head = "".join(f"#define {name} {value}\n" for name, value in defines.items())
    body = (
        BPF_COMMON.replace("PID_SKIP", f"tgid != {args.pid}" if args.pid is not None else "0")
        .replace("SELF", str(self_pid))
        .replace("VERBOSE", str(int(args.verbose)))
    )
    return head + filter_by_containers(args) + body + BPF_SOURCES[source]


def probe_source() -> str:
    """The best source of capability checks this kernel has (see the module docstring)."""
    source = common.first_of(
        [
            ("fentry", BPF.support_kfunc),
            ("kprobe", _core.has_kprobes),
            ("tracepoint", lambda: BPF.tracepoint_exists("capability", "cap_capable")),
        ]
    )
    if source is None:
        raise KernelFeatureError(MISSING, feature="fentry, kprobes or the capability:cap_capable tracepoint")
    return source


def cap_name(cap: int) -> str:
    return CAPABILITIES[cap] if 0 <= cap < len(CAPABILITIES) else "?"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("capable", lambda: run(args))


def _print_stack(b: BPF, stack_id: int, kind: str, pid: int) -> None:
    # -EFAULT: no stack of this kind here (a kernel stack in user code), not a lost one
    if stack_id < 0 and stack_id != -errno.EFAULT:
        print("    [Missed %s Stack]" % kind)
        return
    if stack_id < 0:
        return
    for addr in b["stacks"].walk(stack_id):
        print("        %s" % b.sym(addr, pid, show_module=True, show_offset=True).decode("utf-8", "replace"))


def run(args: argparse.Namespace) -> int:
    source = "tracepoint" if args.ebpf else probe_source()
    b = common.load(args, bpf_text(args, source, os.getpid()))
    if b is None:
        return 0
    if source == "kprobe":
        b.attach_kprobe(event="cap_capable", fn_name="trace_cap_capable")
    if args.extra:
        print(
            "%-9s %-6s %-6s %-6s %-16s %-4s %-20s %-6s %s"
            % ("TIME", "UID", "PID", "TID", "COMM", "CAP", "NAME", "AUDIT", "INSETID"),
            flush=True,
        )
    else:
        print(
            "%-9s %-6s %-6s %-16s %-4s %-20s %-6s" % ("TIME", "UID", "PID", "COMM", "CAP", "NAME", "AUDIT"), flush=True
        )

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        comm = e.comm.decode("utf-8", "replace")
        audit = str(e.audit) if e.audit >= 0 else "N/A"
        line = "%-9s %-6d %-6d " % (common.strftime_now(), e.uid, e.tgid)
        if args.extra:
            insetid = str(e.insetid) if e.insetid >= 0 else "N/A"
            line += "%-6d %-16s %-4d %-20s %-6s %s" % (e.pid, comm, e.cap, cap_name(e.cap), audit, insetid)
        else:
            line += "%-16s %-4d %-20s %-6s" % (comm, e.cap, cap_name(e.cap), audit)
        print(line)
        if args.kernel_stack:
            _print_stack(b, e.kernel_stack_id, "Kernel", -1)
        if args.user_stack:
            _print_stack(b, e.user_stack_id, "User", e.tgid)
        print(end="", flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
