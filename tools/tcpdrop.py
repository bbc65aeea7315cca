#!/usr/bin/env python3
"""tcpdrop: trace TCP packets the kernel drops, with addresses, state, flags and the kernel stack.

Drops come from the skb:kfree_skb tracepoint with a drop reason (as bcc does where tcp_drop() is
gone), kept when the packet belongs to a TCP socket: the tracepoint's rx_sk where the kernel has
it, else the packet's own socket. Drops with no socket (e.g. to a closed port) are not shown, as in
bcc. Addresses and ports come from the packet's headers, so SADDR is the sender.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rbcc import BPF
from rbcc._tools import common, tcp
from rbcc.tcp import flags2str

__all__ = ["bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool tcpdrop           # trace kernel TCP drops
    rbcc tool tcpdrop -4        # trace IPv4 family only
    rbcc tool tcpdrop -6        # trace IPv6 family only
"""

BPF_TEXT = r"""
#include <net/sock.h>
#include <linux/skbuff.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

struct event_t {
    u32 pid;
    u32 stack_id;
    u32 reason;
    u16 sport;
    u16 dport;
    u16 family;
    u8 state;
    u8 tcpflags;
    u8 saddr[16];
    u8 daddr[16];
};

BPF_STACK_TRACE(stack_traces, 1024);
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(skb, kfree_skb) {
    // SKB_NOT_DROPPED_YET and NOT_SPECIFIED are frees, not drops
    if (args->reason <= SKB_DROP_REASON_NOT_SPECIFIED)
        return 0;
    struct sk_buff *skb = (struct sk_buff *)args->skbaddr;
    struct sock *sk = RX_SOCK;
    if (!sk)
        sk = BPF_CORE_READ(skb, sk);
    if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
        return 0;

    // the headers as tcp_hdr()/ip_hdr() find them: head + the header offsets
    unsigned char *head = BPF_CORE_READ(skb, head);
    u16 nh = BPF_CORE_READ(skb, network_header);
    u16 th = BPF_CORE_READ(skb, transport_header);
    struct tcphdr tcp = {};
    if (bpf_probe_read_kernel(&tcp, sizeof(tcp), head + th))
        return 0;

    struct event_t e = {.reason = args->reason};
    if (args->protocol == ETH_P_IP) {
        e.family = AF_INET;
        bpf_probe_read_kernel(e.saddr, 4, head + nh + __builtin_offsetof(struct iphdr, saddr));
        bpf_probe_read_kernel(e.daddr, 4, head + nh + __builtin_offsetof(struct iphdr, daddr));
    } else if (args->protocol == ETH_P_IPV6) {
        e.family = AF_INET6;
        bpf_probe_read_kernel(e.saddr, 16, head + nh + __builtin_offsetof(struct ipv6hdr, saddr));
        bpf_probe_read_kernel(e.daddr, 16, head + nh + __builtin_offsetof(struct ipv6hdr, daddr));
    } else {
        return 0;
    }
    if (FAMILY_SKIP)
        return 0;
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.sport = bpf_ntohs(tcp.source);
    e.dport = bpf_ntohs(tcp.dest);
    e.tcpflags = ((u8 *)&tcp)[13];
    e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
    e.stack_id = stack_traces.get_stackid(args, 0);
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    p = common.parser(
        "tcpdrop",
        "Trace TCP drops by the kernel (skb:kfree_skb with a drop reason, for packets of a TCP socket)",
        EXAMPLES,
    )
    tcp.add_family(p)
    return p


def bpf_text(args: argparse.Namespace, rx_sk: bool = True) -> str:
    """The C for these options (pure: no kernel needed); ``rx_sk``: the tracepoint names the receiving
    socket (Linux 6.12+)."""
    return BPF_TEXT.replace("RX_SOCK", "(struct sock *)args->rx_sk" if rx_sk else "NULL").replace(
        "FAMILY_SKIP", tcp.family_skip("e.family", args)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("tcpdrop", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    rx_sk = args.ebpf or BPF.kernel_struct_has_field("trace_event_raw_kfree_skb", "rx_sk")
    b = common.load(args, bpf_text(args, rx_sk))
    if b is None:
        return 0
    stacks = b["stack_traces"]
    print(
        "%-8s %-7s %-2s %-20s > %-20s %s (%s)" % ("TIME", "PID", "IP", "SADDR:SPORT", "DADDR:DPORT", "STATE", "FLAGS"),
        flush=True,
    )

    def on_event(cpu: int, data: int, size: int) -> None:
        e = b["events"].event(data)
        lines = [
            "%-8s %-7d %-2s %-20s > %-20s %s (%s)"
            % (
                common.strftime_now(),
                e.pid,
                tcp.ipver(e.family),
                "%s:%d" % (tcp.ntop(e.family, e.saddr), e.sport),
                "%s:%d" % (tcp.ntop(e.family, e.daddr), e.dport),
                tcp.state_name(e.state),
                flags2str(e.tcpflags),
            )
        ]
        if e.stack_id < 0x80000000:  # a negative id: the stack could not be taken
            lines += ["\t%s" % b.ksym(addr, show_offset=True).decode() for addr in stacks.walk(e.stack_id)]
        print("\n".join(lines) + "\n", flush=True)

    b["events"].open_perf_buffer(on_event)
    with b:
        common.poll_events(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
