"""The kernel headers' macros bcc programs use that BTF cannot carry (bpf/rbcc/kdefs.h): the networking
headers' constants (if_ether.h, in6.h, pkt_cls.h, tcp.h, socket options), signals, ptrace requests, the
string.h functions and TCP_SKB_CB, each compiled into a real program and its value checked against the
C library's own headers (through Python's socket and signal modules) where those have it."""

from __future__ import annotations

import signal
import socket
import threading

import pytest
from _bpfutil import prog_test_run

from rbcc import BPF

pytestmark = pytest.mark.needs_root

# name → value, from the kernel's uapi headers (values are ABI); checked against libc where it has them
ETHERNET = {
    "ETH_ALEN": 6, "ETH_TLEN": 2, "ETH_HLEN": 14, "ETH_ZLEN": 60, "ETH_DATA_LEN": 1500, "ETH_FRAME_LEN": 1514,
    "ETH_FCS_LEN": 4, "ETH_MIN_MTU": 68, "ETH_MAX_MTU": 0xFFFF, "ETH_P_802_3": 0x0001, "ETH_P_ALL": 0x0003,
    "ETH_P_802_2": 0x0004, "ETH_P_LOOP": 0x0060, "ETH_P_802_3_MIN": 0x0600, "ETH_P_IP": 0x0800,
    "ETH_P_ARP": 0x0806, "ETH_P_TEB": 0x6558, "ETH_P_RARP": 0x8035, "ETH_P_8021Q": 0x8100, "ETH_P_IPX": 0x8137,
    "ETH_P_IPV6": 0x86DD, "ETH_P_PAUSE": 0x8808, "ETH_P_SLOW": 0x8809, "ETH_P_MPLS_UC": 0x8847,
    "ETH_P_MPLS_MC": 0x8848, "ETH_P_PPP_DISC": 0x8863, "ETH_P_PPP_SES": 0x8864, "ETH_P_PAE": 0x888E,
    "ETH_P_AOE": 0x88A2, "ETH_P_8021AD": 0x88A8, "ETH_P_TIPC": 0x88CA, "ETH_P_LLDP": 0x88CC,
    "ETH_P_MACSEC": 0x88E5, "ETH_P_8021AH": 0x88E7, "ETH_P_1588": 0x88F7, "ETH_P_PRP": 0x88FB,
    "ETH_P_FCOE": 0x8906, "ETH_P_FIP": 0x8914, "ETH_P_HSR": 0x892F, "ETH_P_NSH": 0x894F,
    "ETH_P_LOOPBACK": 0x9000, "ETH_P_QINQ1": 0x9100, "ETH_P_QINQ2": 0x9200, "ETH_P_QINQ3": 0x9300,
    "VLAN_HLEN": 4, "VLAN_PRIO_MASK": 0xE000, "VLAN_PRIO_SHIFT": 13, "VLAN_CFI_MASK": 0x1000,
    "VLAN_VID_MASK": 0x0FFF,
}  # fmt: skip
TC = {
    "TC_ACT_UNSPEC": -1, "TC_ACT_OK": 0, "TC_ACT_RECLASSIFY": 1, "TC_ACT_SHOT": 2, "TC_ACT_PIPE": 3,
    "TC_ACT_STOLEN": 4, "TC_ACT_QUEUED": 5, "TC_ACT_REPEAT": 6, "TC_ACT_REDIRECT": 7, "TC_ACT_TRAP": 8,
    "TC_ACT_VALUE_MAX": 8, "TC_ACT_EXT_SHIFT": 28, "TC_ACT_JUMP": 1 << 28, "TC_ACT_GOTO_CHAIN": 2 << 28,
    "TC_H_MAJ_MASK": 0xFFFF0000, "TC_H_MIN_MASK": 0xFFFF, "TC_H_MAJ(0x12345678)": 0x12340000,
    "TC_H_MIN(0x12345678)": 0x5678, "TC_H_MAKE(0x10000, 3)": 0x10003, "TC_H_UNSPEC": 0, "TC_H_ROOT": 0xFFFFFFFF,
    "TC_H_INGRESS": 0xFFFFFFF1, "TC_H_CLSACT": 0xFFFFFFF1, "TC_H_MIN_INGRESS": 0xFFF2, "TC_H_MIN_EGRESS": 0xFFF3,
    "TCPHDR_FIN": 0x01, "TCPHDR_SYN": 0x02, "TCPHDR_RST": 0x04, "TCPHDR_PSH": 0x08, "TCPHDR_ACK": 0x10,
    "TCPHDR_URG": 0x20, "TCPHDR_ECE": 0x40, "TCPHDR_CWR": 0x80, "TCPHDR_SYN_ECN": 0xC2,
}  # fmt: skip
PTRACE = {
    "PTRACE_TRACEME": 0, "PTRACE_PEEKTEXT": 1, "PTRACE_PEEKDATA": 2, "PTRACE_PEEKUSR": 3, "PTRACE_POKETEXT": 4,
    "PTRACE_POKEDATA": 5, "PTRACE_POKEUSR": 6, "PTRACE_CONT": 7, "PTRACE_KILL": 8, "PTRACE_SINGLESTEP": 9,
    "PTRACE_ATTACH": 16, "PTRACE_DETACH": 17, "PTRACE_SYSCALL": 24, "PTRACE_SETOPTIONS": 0x4200,
    "PTRACE_GETEVENTMSG": 0x4201, "PTRACE_GETSIGINFO": 0x4202, "PTRACE_SETSIGINFO": 0x4203,
    "PTRACE_GETREGSET": 0x4204, "PTRACE_SETREGSET": 0x4205, "PTRACE_SEIZE": 0x4206, "PTRACE_INTERRUPT": 0x4207,
    "PTRACE_LISTEN": 0x4208, "TASK_COMM_LEN": 16,
}  # fmt: skip
# the same names in libc's headers, as Python's socket and signal modules give them
LIBC_SOCKET = [
    "SOL_IP", "SOL_TCP", "SO_REUSEADDR", "SO_SNDBUF", "SO_RCVBUF", "SO_KEEPALIVE", "SO_PRIORITY",
    "SO_REUSEPORT", "SO_BINDTODEVICE", "SO_MARK", "IP_TOS", "IP_TTL", "IPV6_TCLASS", "TCP_NODELAY", "TCP_MAXSEG",
    "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_WINDOW_CLAMP", "TCP_CONGESTION", "IPPROTO_HOPOPTS",
    "IPPROTO_ROUTING", "IPPROTO_FRAGMENT", "IPPROTO_ICMPV6", "IPPROTO_NONE", "IPPROTO_DSTOPTS", "INADDR_ANY",
    "INADDR_BROADCAST", "INADDR_LOOPBACK", "AF_PACKET",
]  # fmt: skip
LIBC_SIGNALS = [f"SIG{n}" for n in "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM".split()]
LIBC_SIGNALS += [
    f"SIG{n}" for n in "STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS".split()
]


def expected() -> dict[str, int]:
    values = {**ETHERNET, **TC, **PTRACE}
    values |= {name: getattr(socket, name) for name in LIBC_SOCKET}
    values |= {name: int(getattr(signal, name)) for name in LIBC_SIGNALS}
    # not in Python's socket module: checked by value
    values |= {"TCP_SAVED_SYN": 28, "IPPROTO_MH": 135, "SOL_IPV6": 41}
    return values


def values_program(names: list[str]) -> str:
    puts = "\n".join(f"    put({i}, {name});" for i, name in enumerate(names))
    return f"""
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in6.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/ptrace.h>
#include <net/tcp.h>
BPF_ARRAY(vals, s64, {len(names)});
static __always_inline void put(int i, s64 v) {{
    vals.update(&i, &v);
}}
int values(struct __sk_buff *skb) {{
{puts}
    return TC_ACT_OK;
}}
"""


def test_every_constant_has_the_kernels_value() -> None:
    values = expected()
    names = sorted(values)
    with BPF(text=values_program(names)) as b:
        retval, _ = prog_test_run(b.load_func("values", BPF.SCHED_CLS).fd, bytes(64))
        got = {name: b["vals"][i].value for i, name in enumerate(names)}
    assert retval == 0
    assert got == values


STRINGS = r"""
struct rec { char comm[16]; char copy[16]; int same_comm; int differs; int ordered; };
BPF_ARRAY(out, struct rec, 1);
int strings(struct __sk_buff *skb) {
    struct rec r;
    memset(&r, 0, sizeof(r));
    char name[16] = "rbcc-memcpy";
    memcpy(r.comm, name, sizeof(name));
    memmove(r.copy, r.comm, 8);
    r.same_comm = memcmp(r.comm, "rbcc-memcpy", 12) == 0;
    r.differs = memcmp(r.comm, "rbcc-memcpz", 12) != 0;
    r.ordered = memcmp("abc", "abd", 3) < 0 && memcmp("abd", "abc", 3) > 0;
    int zero = 0;
    out.update(&zero, &r);
    return TC_ACT_OK;
}
"""


def test_string_functions_work_as_in_kernel_code() -> None:
    with BPF(text=STRINGS) as b:
        prog_test_run(b.load_func("strings", BPF.SCHED_CLS).fd, bytes(64))
        r = b["out"][0]
    assert r.comm == b"rbcc-memcpy"
    assert r.copy == b"rbcc-mem"
    assert (r.same_comm, r.differs, r.ordered) == (1, 1, 1)


# TCP's control block of each data segment the server socket receives, at tcp_probe (raw: its record has
# the skb only from 6.3 on), keyed by the data's length
TCP_CB = r"""
#include <net/tcp.h>
struct seg { u32 len; u8 flags; u32 seq_direct; u32 seq_var; };
BPF_HASH(segs, u32, struct seg);
RAW_TRACEPOINT_PROBE(tcp_probe) {
    struct sock *sk = (struct sock *)ctx->args[0];
    struct sk_buff *skb = (struct sk_buff *)ctx->args[1];
    if (sk->__sk_common.skc_num != PORT)
        return 0;
    struct tcp_skb_cb *cb = TCP_SKB_CB(skb);
    struct seg s = {};
    s.len = cb->end_seq - cb->seq;
    s.flags = cb->tcp_flags;
    s.seq_direct = TCP_SKB_CB(skb)->seq;
    s.seq_var = cb->seq;
    u32 key = s.len;
    if (key)
        segs.update(&key, &s);
    return 0;
}
"""


def test_tcp_skb_cb_reads_tcps_control_block_of_a_received_segment() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with BPF(text=TCP_CB, cflags=[f"-DPORT={port}"]) as b:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer, _ = server.accept()
                with peer:
                    reader = threading.Thread(target=lambda: [peer.recv(4096) for _ in range(2)])
                    reader.start()
                    client.sendall(b"x" * 100)
                    reader.join(timeout=0.2)
                    client.sendall(b"y" * 333)
                    reader.join(timeout=5)
            segs = {k.value: v for k, v in b["segs"].items()}
    assert sorted(segs) == [100, 333]
    for length, s in segs.items():
        assert s.len == length  # end_seq - seq: the data's length
        assert s.flags & 0x10 and s.flags & 0x08  # ACK and PSH
        assert s.seq_direct == s.seq_var != 0
    assert segs[333].seq_var == segs[100].seq_var + 100
