#!/usr/bin/env python3
"""tcpretrans: trace TCP retransmits (and, with -l, tail loss probes), or count them per flow.

Retransmits come from the tcp:tcp_retransmit_skb tracepoint (as in bcc on kernels that have it). Tail
loss probes have no tracepoint: -l needs a kprobe on tcp_send_loss_probe, as bcc's does, and stops
with one line where the kernel has no kprobes (a probe that resends data is still seen as a
retransmit without -l). The PID is whoever was on the CPU, usually 0: retransmits run from timers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc import _core
from rbcc._tools import common, tcp
from rbcc.errors import KernelFeatureError

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpretrans           # trace TCP retransmits
    rbcc tool tcpretrans -l        # include TLP attempts
    rbcc tool tcpretrans -4        # trace IPv4 family only
    rbcc tool tcpretrans -6        # trace IPv6 family only
"""

RETRANSMIT, TLP = 1, 2
KIND = {RETRANSMIT: "R", TLP: "L"}

BPF_TEXT = r"""
#include <net/sock.h>
#include <net/tcp.h>

#define RETRANSMIT 1
#define TLP 2

struct event_t {
    u32 pid;
    u32 seq;
    u32 state;
    u32 type;
    u16 lport;
    u16 dport;
    u16 family;
    u8 saddr[16];
    u8 daddr[16];
};

struct flow_t {
    u8 saddr[16];
    u8 daddr[16];
    u16 lport;
    u16 dport;
    u16 family;
};

BPF_PERF_OUTPUT(events);
BPF_HASH(counts, struct flow_t, u64);

COPY_ADDRS_MACRO
READ_SK_ADDRS_MACRO

static __always_inline void report(void *ctx, struct event_t *e) {
#if COUNT_MODE
    struct flow_t flow = {.lport = e->lport, .dport = e->dport, .family = e->family};
    __builtin_memcpy(flow.saddr, e->saddr, sizeof(flow.saddr));
    __builtin_memcpy(flow.daddr, e->daddr, sizeof(flow.daddr));
    counts.increment(flow);
#else
    events.perf_submit(ctx, e, sizeof(*e));
#endif
}

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb) {
    u16 family = args->family;
    if (FAMILY_SKIP)
        return 0;
    struct event_t e = {.type = RETRANSMIT, .lport = args->sport, .dport = args->dport, .family = family};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.state = args->state;
    // TCP_SKB_CB(skb)->seq: the control block lives in skb->cb
    const void *cb = args->skbaddr + __builtin_offsetof(struct sk_buff, cb);
    bpf_probe_read_kernel(&e.seq, sizeof(e.seq), cb + __builtin_offsetof(struct tcp_skb_cb, seq));
    COPY_ADDRS(&e, args);
    report(args, &e);
    return 0;
}
"""

# A tail loss probe: tcp_send_loss_probe(sk), read from the socket (there is no skb yet).
TLP_TEXT = r"""
int trace_tlp(struct pt_regs *ctx, struct sock *sk) {
    u16 family = 0;
    bpf_probe_read_kernel(&family, sizeof(family), &sk->__sk_common.skc_family);
    if (FAMILY_SKIP || (family != AF_INET && family != AF_INET6))
        return 0;
    struct event_t e = {.type = TLP, .family = family};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    u16 dport = 0;
    u8 state = 0;
    bpf_probe_read_kernel(&e.lport, sizeof(e.lport), &sk->__sk_common.skc_num);
    bpf_probe_read_kernel(&dport, sizeof(dport), &sk->__sk_common.skc_dport);
    bpf_probe_read_kernel(&state, sizeof(state), (void *)&sk->__sk_common.skc_state);
    e.dport = bpf_ntohs(dport);
    e.state = state;
    READ_SK_ADDRS(&e, sk, family);
    report(ctx, &e);
    return 0;
}
"""

NO_KPROBES = (
    "-l needs a kprobe on tcp_send_loss_probe (tail loss probes have no tracepoint) and this kernel has "
    "no kprobes (CONFIG_KPROBES); without -l, retransmits (a probe's resent data among them) come from "
    "tcp:tcp_retransmit_skb"
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcpretrans",
        "Trace TCP retransmits (-l needs kprobes: tail loss probes have no tracepoint)",
        EXAMPLES,
    )
    p.add_argument("-s", "--sequence", action="store_true", help="display TCP sequence numbers")
    p.add_argument("-l", "--lossprobe", action="store_true", help="include tail loss probe attempts")
    p.add_argument("-c", "--count", action="store_true", help="count occurred retransmits per flow")
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    text = BPF_TEXT + (TLP_TEXT if args.lossprobe else "")
    return (
        text.replace("COPY_ADDRS_MACRO", tcp.COPY_ADDRS)
        .replace("READ_SK_ADDRS_MACRO", tcp.READ_SK_ADDRS if args.lossprobe else "")
        .replace("COUNT_MODE", "1" if args.count else "0")
        .replace("FAMILY_SKIP", tcp.family_skip("family", args))
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpretrans", lambda: run(args))


def endpoint(family: int, raw: bytes, port: int) -> str:
    return "%s:%d" % (tcp.ntop(family, raw), port)


def run(args: argparse.Namespace) -> int:
    if args.lossprobe and not args.ebpf and not _core.has_kprobes():
        raise KernelFeatureError(NO_KPROBES, feature="kprobes", alternative="tcpretrans without -l")
    b = common.load(args, bpf_text(args))
    if b is None:
        return 0
    with b:
        if args.lossprobe:
            b.attach_kprobe(event="tcp_send_loss_probe", fn_name="trace_tlp")
        print("Tracing retransmits ... Hit Ctrl-C to end", flush=True)
        if args.count:

            def row(k: Any, count: int) -> str:
                local = "[%s]#%d" % (tcp.ntop(k.family, k.saddr), k.lport)
                remote = "[%s]#%d" % (tcp.ntop(k.family, k.daddr), k.dport)
                return "%-20s <-> %-20s %10d" % (local, remote, count)

            header = "%-25s %-25s %-10s" % ("LADDR:LPORT", "RADDR:RPORT", "RETRANSMITS")
            tcp.counts_at_end(b, header, row, most_first=False)
            return 0
        header = "%-8s %-7s %-2s %-20s %1s> %-20s" % ("TIME", "PID", "IP", "LADDR:LPORT", "T", "RADDR:RPORT")
        header += " %-12s %-10s" % ("STATE", "SEQ") if args.sequence else " %-4s" % "STATE"
        print(header, flush=True)

        def on_event(cpu: int, data: int, size: int) -> None:
            e = b["events"].event(data)
            row = "%-8s %-7d %-2s %-20s %1s> %-20s" % (
                common.strftime_now(),
                e.pid,
                tcp.ipver(e.family),
                endpoint(e.family, e.saddr, e.lport),
                KIND.get(e.type, "?"),
                endpoint(e.family, e.daddr, e.dport),
            )
            state = tcp.state_name(e.state)
            row += " %-12s %s" % (state, e.seq) if args.sequence else " %s" % state
            print(row, flush=True)

        b["events"].open_perf_buffer(on_event)
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
