"""Functions attached by hand on the real kernel: XDP on the loopback device, a socket filter on a raw
socket, and BPF_PROG_ATTACH to a cgroup (cgroup_skb egress) and to a sockmap (sk_msg verdict), each
seeing (and counting, or dropping) packets this test sends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import child_env, mount_point

from rbcc import BPF, AttachError, BPFAttachType, BPFError, KernelFeatureError, _core

pytestmark = pytest.mark.needs_root

HEADERS = r"""
#include <uapi/linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
"""

# counts[DROP]: UDP packets to PORT seen; DROP=1 drops them.
XDP_UDP = (
    HEADERS
    + r"""
BPF_ARRAY(counts, u64, 2);

int xdp_udp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != htons(ETH_P_IP))
        return XDP_PASS;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP)
        return XDP_PASS;
    struct udphdr *udp = (void *)ip + ip->ihl * 4;
    if ((void *)(udp + 1) > data_end || udp->dest != htons(PORT))
        return XDP_PASS;
    counts.increment(DROP);
    return DROP ? XDP_DROP : XDP_PASS;
}

int not_xdp(struct __sk_buff *skb) {
    return 0;
}
"""
)

MODES = BPF.XDP_FLAGS_SKB_MODE  # lo has generic XDP only: the slot every attach here lands in


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 at a port of its own: the PORT of the programs here."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        yield sock


def send_udp(port: int, n: int, payload: bytes = b"rbcc") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        for i in range(n):
            out.sendto(payload + b"-%d" % i, ("127.0.0.1", port))


def receive_all(sock: socket.socket, wait: float = 0.3) -> list[bytes]:
    got = []
    sock.settimeout(wait)
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(sock.recv(256))
    return got


@pytest.fixture
def lo_free() -> Iterator[None]:
    """lo without an XDP program before the test, and (whatever the test did) after it."""
    if _core.xdp_prog_id("lo", MODES) != 0:
        pytest.skip("lo already has an XDP program (not this test's): leaving it alone")
    try:
        yield
    finally:
        left = _core.xdp_prog_id("lo", MODES)
        if left != 0:
            BPF.remove_xdp("lo", MODES)  # it was free before the test: the program is the test's
        assert left == 0, "the test left an XDP program on lo"


def xdp_program(port: int, drop: bool) -> BPF:
    return BPF(text=XDP_UDP, cflags=[f"-DPORT={port}", f"-DDROP={int(drop)}"])


def test_xdp_counts_udp_on_lo_until_removed(lo_free: None, receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    with xdp_program(port, drop=False) as b:
        counts = b["counts"]
        fn = b.load_func("xdp_udp", BPF.XDP)
        BPF.attach_xdp("lo", fn, 0)
        try:
            assert _core.xdp_prog_id("lo", MODES) != 0
            send_udp(port, 7)
            assert len(receive_all(receiver)) == 7  # XDP_PASS: all delivered
            assert counts[0].value == 7
            assert counts[1].value == 0
        finally:
            BPF.remove_xdp("lo", 0)
        assert _core.xdp_prog_id("lo", MODES) == 0
        send_udp(port, 3)
        assert len(receive_all(receiver)) == 3
        assert counts[0].value == 7  # removed: no longer sees packets


def test_xdp_drop_in_skb_mode(lo_free: None, receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    with xdp_program(port, drop=True) as b:
        fn = b.load_func(b"xdp_udp", BPF.XDP)
        BPF.attach_xdp(b"lo", fn, BPF.XDP_FLAGS_SKB_MODE)
        try:
            send_udp(port, 4)
            assert receive_all(receiver) == []
            assert b["counts"][1].value == 4
        finally:
            BPF.remove_xdp("lo", BPF.XDP_FLAGS_SKB_MODE)
        send_udp(port, 2, b"after")
        assert receive_all(receiver) == [b"after-0", b"after-1"]


def test_cleanup_removes_the_xdp_program_it_attached(lo_free: None, receiver: socket.socket) -> None:
    """rbcc's choice (bcc leaves it): the end of the with block removes what attach_xdp put on lo."""
    port = receiver.getsockname()[1]
    with xdp_program(port, drop=True) as b:
        counts = b["counts"]
        BPF.attach_xdp("lo", b.load_func("xdp_udp", BPF.XDP))
        assert _core.xdp_prog_id("lo", MODES) != 0
        send_udp(port, 2)
        assert receive_all(receiver) == []
    assert _core.xdp_prog_id("lo", MODES) == 0
    send_udp(port, 3)
    assert len(receive_all(receiver)) == 3
    assert counts[1].value == 2  # a table outlives cleanup; the program saw only the first packets


def test_cleanup_leaves_a_program_that_replaced_its_own(lo_free: None, receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    first, second = xdp_program(port, drop=False), xdp_program(port, drop=False)
    try:
        BPF.attach_xdp("lo", first.load_func("xdp_udp", BPF.XDP))
        BPF.attach_xdp("lo", second.load_func("xdp_udp", BPF.XDP))  # flags 0: replaces the first
        theirs = _core.xdp_prog_id("lo", MODES)
        first.cleanup()
        assert _core.xdp_prog_id("lo", MODES) == theirs
        send_udp(port, 2)
        assert len(receive_all(receiver)) == 2
        assert second["counts"][0].value == 2
    finally:
        second.cleanup()
    assert _core.xdp_prog_id("lo", MODES) == 0


def test_xdp_errors_are_clear(lo_free: None) -> None:
    with xdp_program(9, drop=False) as b:
        fn = b.load_func("xdp_udp", BPF.XDP)
        with pytest.raises(AttachError, match="no network device named 'rbcc-nosuch0'"):
            BPF.attach_xdp("rbcc-nosuch0", fn)
        with pytest.raises(KernelFeatureError, match="native mode.*XDP_FLAGS_SKB_MODE"):
            BPF.attach_xdp("lo", fn, BPF.XDP_FLAGS_DRV_MODE)
        other = b.load_func("not_xdp", BPF.SOCKET_FILTER)
        with pytest.raises(
            AttachError, match=r"not_xdp is loaded as BPF.SOCKET_FILTER.*load_func\('not_xdp', BPF.XDP\)"
        ):
            BPF.attach_xdp("lo", other)
        with pytest.raises(BPFError, match="takes a BPF.Function"):
            BPF.attach_xdp("lo", "xdp_udp")  # type: ignore[arg-type]
        # a Function made by hand (bcc allows it) is checked by the kernel
        forged = BPF.Function(b, "not_xdp", other.fd)
        with pytest.raises(AttachError, match=r"refused the program \(is it loaded with load_func\(name, BPF.XDP\)"):
            BPF.attach_xdp("lo", forged)
        BPF.attach_xdp("lo", fn)
        try:
            with pytest.raises(AttachError, match="already attached"):
                BPF.attach_xdp("lo", fn, BPF.XDP_FLAGS_UPDATE_IF_NOEXIST)
        finally:
            BPF.remove_xdp("lo")
        with pytest.raises(AttachError, match="no network device named"):
            BPF.remove_xdp("rbcc-nosuch0")
    assert _core.xdp_prog_id("lo", MODES) == 0


# seen[skb->pkt_type]: UDP frames to PORT a raw socket on lo sees; it keeps (returns) only those.
SOCKET_FILTER = (
    HEADERS
    + r"""
BPF_ARRAY(seen, u64, 8);

int udp_filter(struct __sk_buff *skb) {
    u8 proto = 0;
    u16 dport = 0;
    if (skb->protocol != htons(ETH_P_IP))
        return 0;
    if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, protocol), &proto, 1) < 0
        || proto != IPPROTO_UDP)
        return 0;
    if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(struct iphdr) + offsetof(struct udphdr, dest), &dport, 2) < 0
        || dport != htons(PORT))
        return 0;
    u32 type = skb->pkt_type;
    seen.increment(type);
    return -1;
}
"""
)

PACKET_HOST, PACKET_OUTGOING = 0, 4
UDP_PAYLOAD_AT = 14 + 20 + 8  # lo's ethernet header, IPv4 without options, UDP


def test_raw_socket_filter_sees_and_keeps_only_its_packets(receiver: socket.socket) -> None:
    port = receiver.getsockname()[1]
    with BPF(text=SOCKET_FILTER, cflags=[f"-DPORT={port}"]) as b:
        fn = b.load_func("udp_filter", BPF.SOCKET_FILTER)
        BPF.attach_raw_socket(fn, "lo")
        assert fn.sock is not None
        with socket.fromfd(fn.sock, socket.AF_PACKET, socket.SOCK_RAW) as raw:
            send_udp(port + 1 if port < 65535 else port - 1, 3, b"other")  # not the filter's port
            send_udp(port, 5, b"ours")
            frames = receive_all(raw)
        # lo shows a raw socket each frame twice: leaving (outgoing) and arriving (host)
        assert sorted(f[UDP_PAYLOAD_AT:] for f in frames) == sorted([b"ours-%d" % i for i in range(5)] * 2)
        seen = b["seen"]
        assert seen[PACKET_HOST].value == 5
        assert seen[PACKET_OUTGOING].value == 5
        sock, inode = fn.sock, os.fstat(fn.sock).st_ino
    # cleanup closed the socket (a fromfd copy would stay open)
    with contextlib.suppress(OSError):
        assert os.fstat(sock).st_ino != inode


def test_raw_socket_errors_are_clear() -> None:
    with BPF(text=SOCKET_FILTER, cflags=["-DPORT=9"]) as b:
        fn = b.load_func("udp_filter", BPF.SOCKET_FILTER)
        with pytest.raises(AttachError, match="no network device named 'rbcc-nosuch0'"):
            BPF.attach_raw_socket(fn, "rbcc-nosuch0")
        as_xdp = BPF(text=XDP_UDP, cflags=["-DPORT=9", "-DDROP=0"])
        with as_xdp:
            xdp = as_xdp.load_func("xdp_udp", BPF.XDP)
            with pytest.raises(AttachError, match=r"xdp_udp is loaded as BPF.XDP.*BPF.SOCKET_FILTER"):
                BPF.attach_raw_socket(xdp, "lo")
            forged = BPF.Function(as_xdp, "xdp_udp", xdp.fd)
            with pytest.raises(AttachError, match=r"cannot attach the socket filter.*BPF.SOCKET_FILTER"):
                BPF.attach_raw_socket(forged, "lo")
        assert fn.sock is None


# egress[0]: UDP packets to PORT leaving sockets of the cgroup (cgroup_skb: the data starts at the IP header)
CGROUP_EGRESS = (
    HEADERS
    + r"""
BPF_ARRAY(egress, u64, 1);

int count_egress(struct __sk_buff *skb) {
    u8 proto = 0;
    u16 dport = 0;
    if (skb->protocol != htons(ETH_P_IP))
        return 1;
    if (bpf_skb_load_bytes(skb, offsetof(struct iphdr, protocol), &proto, 1) < 0 || proto != IPPROTO_UDP)
        return 1;
    if (bpf_skb_load_bytes(skb, sizeof(struct iphdr) + offsetof(struct udphdr, dest), &dport, 2) < 0
        || dport != htons(PORT))
        return 1;
    egress.increment(0);
    return 1;
}
"""
)

# A child that joins the cgroup, then sends from a socket it creates there (a socket belongs to the
# cgroup of the process that created it).
JOIN_AND_SEND = """
import os, socket, sys
procs, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(procs, "w") as f:
    f.write(str(os.getpid()))
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for i in range(n):
        s.sendto(b"child-%d" % i, ("127.0.0.1", port))
"""


def cgroup2_mount() -> Iterator[Path]:
    found = mount_point("cgroup2")
    if found is not None:
        yield found
        return
    with tempfile.TemporaryDirectory(prefix="rbcc-cgroup2-") as where:
        mounted = subprocess.run(["mount", "-t", "cgroup2", "none", where], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"no cgroup2 mounted, and mounting one failed: {mounted.stderr.strip()}")
        try:
            yield Path(where)
        finally:
            subprocess.run(["umount", where], check=False)


@pytest.fixture
def cgroup() -> Iterator[tuple[Path, int]]:
    """A fresh cgroup v2 directory and an fd of it, removed after the test."""
    for root in cgroup2_mount():
        path = root / f"rbcc-test-{os.getpid()}-{time.monotonic_ns()}"
        path.mkdir()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield path, fd
        finally:
            os.close(fd)
            deadline = time.monotonic() + 3
            while True:  # the kernel frees a cgroup its last process left a moment later
                try:
                    path.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


def send_from_cgroup(path: Path, port: int, n: int) -> None:
    args = [sys.executable, "-c", JOIN_AND_SEND, str(path / "cgroup.procs"), str(port), str(n)]
    subprocess.run(args, check=True, env=child_env(), timeout=30)


def test_cgroup_skb_egress_counts_the_cgroups_packets(cgroup: tuple[Path, int], receiver: socket.socket) -> None:
    path, cgfd = cgroup
    port = receiver.getsockname()[1]
    egress_type = BPFAttachType.CGROUP_INET_EGRESS
    with BPF(text=CGROUP_EGRESS, cflags=[f"-DPORT={port}"]) as b:
        fn = b.load_func("count_egress", BPF.CGROUP_SKB, attach_type=egress_type)
        BPF.attach_func(fn, cgfd, egress_type)
        egress = b["egress"]
        send_udp(port, 3)  # this process is not in the cgroup
        assert egress[0].value == 0
        send_from_cgroup(path, port, 5)
        assert egress[0].value == 5
        assert len(receive_all(receiver)) == 8  # the program returns 1: every packet goes out
        BPF.detach_func(fn, cgfd, egress_type)
        send_from_cgroup(path, port, 4)
        assert egress[0].value == 5
        with pytest.raises(AttachError, match="cgroup_inet_egress.*not attached"):
            BPF.detach_func(fn, cgfd, egress_type)


def test_cleanup_detaches_what_attach_func_attached(cgroup: tuple[Path, int]) -> None:
    path, cgfd = cgroup
    egress_type = BPFAttachType.CGROUP_INET_EGRESS
    b = BPF(text=CGROUP_EGRESS, cflags=["-DPORT=9"])
    egress = b["egress"]
    fn = b.load_func("count_egress", BPF.CGROUP_SKB, attach_type=egress_type)
    BPF.attach_func(fn, cgfd, egress_type)
    send_from_cgroup(path, 9, 2)
    assert egress[0].value == 2
    b.cleanup()
    send_from_cgroup(path, 9, 3)
    assert egress[0].value == 2  # the kernel would have kept it attached (and counting) otherwise


def test_attach_func_errors_are_clear(cgroup: tuple[Path, int]) -> None:
    _path, cgfd = cgroup
    with BPF(text=CGROUP_EGRESS + XDP_UDP.replace(HEADERS, ""), cflags=["-DPORT=9", "-DDROP=0"]) as b:
        xdp = b.load_func("xdp_udp", BPF.XDP)
        with pytest.raises(AttachError, match="cgroup_inet_egress.*does the program's type fit"):
            BPF.attach_func(xdp, cgfd, BPFAttachType.CGROUP_INET_EGRESS)
        fn = b.load_func("count_egress", BPF.CGROUP_SKB)
        with pytest.raises(AttachError, match="not open"):
            BPF.attach_func(fn, 987654, BPFAttachType.CGROUP_INET_EGRESS)
        with pytest.raises(BPFError, match="takes a BPF.Function"):
            BPF.attach_func(fn.fd, cgfd, BPFAttachType.CGROUP_INET_EGRESS)  # type: ignore[arg-type]


# msgs[0]: sendmsg calls on sockets in the sockmap; the sockmap is declared the libbpf way.
SK_MSG = r"""
struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 4);
    __type(key, int);
    __type(value, int);
} sock_map SEC(".maps");
BPF_ARRAY(msgs, u64, 1);

int count_msg(struct sk_msg_md *msg) {
    msgs.increment(0);
    return SK_PASS;
}
"""


@contextlib.contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            yield client, peer


def test_sk_msg_verdict_on_a_sockmap_counts_sends() -> None:
    verdict = BPFAttachType.SK_MSG_VERDICT
    with BPF(text=SK_MSG) as b, tcp_pair() as (client, peer):
        fn = b.load_func("count_msg", BPF.SK_MSG)
        sock_map = b["sock_map"]
        BPF.attach_func(fn, sock_map.map_fd, verdict)
        sock_map[ctypes.c_int(0)] = ctypes.c_int(client.fileno())
        for i in range(6):
            client.sendall(b"m%d" % i)
        assert b["msgs"][0].value == 6
        peer.settimeout(2)
        got = b""
        while len(got) < 12:
            got += peer.recv(64)
        assert got == b"".join(b"m%d" % i for i in range(6))  # SK_PASS: the data flows on
        BPF.detach_func(fn, sock_map.map_fd, verdict)
        # a socket keeps the programs of the map it joined: one joining now has none
        with tcp_pair() as (later, _):
            sock_map[ctypes.c_int(1)] = ctypes.c_int(later.fileno())
            later.sendall(b"x")
        assert b["msgs"][0].value == 6
