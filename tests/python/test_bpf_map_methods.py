"""The map methods of bcc's C dialect that belong to particular program types.

Where this kernel can run them from a test (ring buffer queries, cgroup checks, packet copies through a
perf buffer) they run and are checked; the rest (XDP redirects, socket-map redirects, storage of
sockets and cgroups) are loaded as their program type, so the verifier checks every call.
"""

from __future__ import annotations

import ctypes
import os
import socket

import pytest
from _bpfutil import cgroup2_root, poll_until, target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
BPF_RINGBUF_OUTPUT(rb, 1);
BPF_PERF_OUTPUT(packets);
BPF_DEVMAP(dev, 4);
BPF_CPUMAP(cpus, 2);
BPF_XSKMAP(xsk, 2);
BPF_SOCKMAP(sm, 4);
BPF_SOCKHASH(sh, u32, 8);
BPF_SK_STORAGE(sks, u64);
BPF_CGROUP_ARRAY(cg, 1);
BPF_CGROUP_STORAGE(cgs, u64);
BPF_ARRAY(out, u64, 4);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int slot = 0;
    u64 size = rb.ringbuf_query(BPF_RB_RING_SIZE);
    out.update(&slot, &size);
    slot = 1;
    u64 under = cg.check_current_task(0);
    out.update(&slot, &under);
    return 0;
}

struct packet { u32 len; u16 dport; };

int udp_copy(struct __sk_buff *skb) {
    struct packet p = {skb->len, 0};
    if (skb->protocol != bpf_htons(ETH_P_IP))
        return 0;
    /* lo frames: 14 bytes of Ethernet, 20 of IPv4 (no options from our sender), then UDP */
    bpf_skb_load_bytes(skb, 14 + 20 + 2, &p.dport, 2);
    if (bpf_ntohs(p.dport) != PORT)
        return 0;
    packets.perf_submit_skb(skb, skb->len, &p, sizeof(p));
    return 0;
}

int xdp_dev(struct xdp_md *ctx) { return dev.redirect_map(0, 0); }
int xdp_cpu(struct xdp_md *ctx) { return cpus.redirect_map(0, 0); }
int xdp_xsk(struct xdp_md *ctx) { return xsk.redirect_map(ctx->rx_queue_index, XDP_PASS); }

SEC("sockops") int ops(struct bpf_sock_ops *ops) {
    u32 k = 0;
    sh.sock_hash_update(ops, &k, BPF_ANY);
    sm.sock_map_update(ops, &k, BPF_ANY);
    return 1;
}
SEC("sk_msg") int msg_hash(struct sk_msg_md *msg) { u32 k = 0; return sh.msg_redirect_hash(msg, &k, BPF_F_INGRESS); }
SEC("sk_msg") int msg_map(struct sk_msg_md *msg) { return sm.msg_redirect_map(msg, 0, BPF_F_INGRESS); }
SEC("sk_skb/stream_verdict") int skb_hash(struct __sk_buff *skb) { u32 k = 0; return sh.sk_redirect_hash(skb, &k, 0); }
SEC("sk_skb/stream_verdict") int skb_map(struct __sk_buff *skb) { return sm.sk_redirect_map(skb, 0, 0); }

SEC("cgroup_skb/egress") int egress(struct __sk_buff *skb) {
    u64 *seen = cgs.get_local_storage(0);
    if (seen)
        __sync_fetch_and_add(seen, 1);
    struct bpf_sock *sk = skb->sk;
    if (sk) {
        sk = bpf_sk_fullsock(sk);
        if (sk) {
            u64 *mine = sks.sk_storage_get(sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
            if (mine)
                *mine += 1;
            sks.sk_storage_delete(sk);
        }
    }
    return 1;
}
"""


def test_ringbuf_query_and_check_current_task() -> None:
    with BPF(text=PROGRAM, cflags=target_cflags(PORT=1)) as b:
        b["cg"][0] = str(cgroup2_root())  # every task is under the root
        os.getppid()
        assert b["out"][0].value == 4096  # BPF_RINGBUF_OUTPUT(rb, 1): one page
        assert b["out"][1].value == 1


def test_perf_submit_skb_appends_the_packet() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        with BPF(text=PROGRAM, cflags=target_cflags(PORT=port)) as b:
            fn = b.load_func("udp_copy", BPF.SOCKET_FILTER)
            BPF.attach_raw_socket(fn, "lo")
            got: list[bytes] = []

            def collect(cpu: int, data: int, size: int) -> None:
                got.append(ctypes.string_at(data, size))

            b["packets"].open_perf_buffer(collect)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"rbcc-payload", ("127.0.0.1", port))
            assert poll_until(b.perf_buffer_poll, lambda: bool(got))
    record = got[0]
    length, dport = int.from_bytes(record[:4], "little"), int.from_bytes(record[4:6], "big")
    assert dport == port
    # the record (8 bytes with padding) is followed by the packet's bytes, the payload at its end
    assert length == 14 + 20 + 8 + len(b"rbcc-payload")
    assert record[8 : 8 + length].endswith(b"rbcc-payload")


@pytest.mark.parametrize(
    ("fn", "prog_type"),
    [
        ("xdp_dev", BPF.XDP),
        ("xdp_cpu", BPF.XDP),
        ("xdp_xsk", BPF.XDP),
        ("ops", BPF.SOCK_OPS),
        ("msg_hash", BPF.SK_MSG),
        ("msg_map", BPF.SK_MSG),
        ("skb_hash", BPF.SK_SKB),
        ("skb_map", BPF.SK_SKB),
        ("egress", BPF.CGROUP_SKB),
    ],
)
def test_methods_of_other_program_types_pass_the_verifier(fn: str, prog_type: int) -> None:
    with BPF(text=PROGRAM, cflags=target_cflags(PORT=1)) as b:
        assert b.load_func(fn, prog_type).fd > 0
