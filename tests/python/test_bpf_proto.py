"""bcc's <bcc/proto.h> packet parsing on the real kernel: the header structs, cursor_advance, field reads
and writes in network order (bpf_dext_pkt/bpf_dins_pkt through the skb, direct through an XDP packet
pointer), load_byte, incr_cksum_l3. A socket filter like bcc's http_filter example keeps the HTTP
packets of a loopback connection; an XDP program counts (and redirects) UDP packets by port; programs run
with BPF_PROG_TEST_RUN on frames built here show every field read and written at its bits; and bcc's own
networking examples, as Debian installs them, load, http-parse-simple.c keeping an HTTP request."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import prog_test_run

from rbcc import BPF, CompileError, _core

pytestmark = pytest.mark.needs_root

# bcc's http_filter example, as its users write it (cursor from 0, header fields read through it, bytes of
# the payload with load_byte), keeping only the packets of one connection's port.
HTTP_FILTER = r"""
#include <uapi/linux/ptrace.h>
#include <net/sock.h>
#include <bcc/proto.h>

BPF_ARRAY(kept, u64, 2);

int http_filter(struct __sk_buff *skb) {
    u8 *cursor = 0;
    struct ethernet_t *ethernet = cursor_advance(cursor, sizeof(*ethernet));
    if (!(ethernet->type == 0x0800))
        return 0;
    struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
    if (ip->ver != 4 || ip->nextp != IPPROTO_TCP)
        return 0;
    u32 ip_header_length = ip->hlen << 2;
    if (ip_header_length < sizeof(*ip))
        return 0;
    void *_ = cursor_advance(cursor, (ip_header_length - sizeof(*ip)));
    struct tcp_t *tcp = cursor_advance(cursor, sizeof(*tcp));
    if (tcp->src_port != PORT && tcp->dst_port != PORT)
        return 0;
    u32 tcp_header_length = tcp->offset << 2;
    u32 payload_offset = ETH_HLEN + ip_header_length + tcp_header_length;
    u32 payload_length = ip->tlen - ip_header_length - tcp_header_length;
    if (payload_length < 7)
        return 0;
    unsigned long p[7];
    for (int i = 0; i < 7; i++)
        p[i] = load_byte(skb, payload_offset + i);
    int to_server = tcp->dst_port == PORT;
    if ((p[0] == 'H') && (p[1] == 'T') && (p[2] == 'T') && (p[3] == 'P'))
        goto KEEP;
    if ((p[0] == 'G') && (p[1] == 'E') && (p[2] == 'T'))
        goto KEEP;
    return 0;
KEEP:
    kept.increment(to_server);
    return -1;
}
"""


@contextlib.contextmanager
def http_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that answers each request line with an HTTP response; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    if conn.recv(1024).startswith(b"GET"):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        thread.join(timeout=5)


def tcp_payload(frame: bytes) -> bytes:
    """The TCP payload of an Ethernet/IPv4/TCP frame."""
    ihl = (frame[14] & 0x0F) * 4
    total = struct.unpack_from("!H", frame, 16)[0]
    data_offset = (frame[14 + ihl + 12] >> 4) * 4
    return frame[14 + ihl + data_offset : 14 + total]


def test_http_filter_socket_keeps_the_http_packets_of_a_connection() -> None:
    with http_server() as port, BPF(text=HTTP_FILTER, cflags=[f"-DPORT={port}"]) as b:
        fn = b.load_func("http_filter", BPF.SOCKET_FILTER)
        BPF.attach_raw_socket(fn, "lo")
        assert fn.sock is not None
        with socket.fromfd(fn.sock, socket.AF_PACKET, socket.SOCK_RAW) as raw:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"GET /rbcc-proto HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert client.recv(1024).startswith(b"HTTP/1.1 200 OK")
            with socket.create_connection(("127.0.0.1", port)) as other:
                other.sendall(b"hello, this is no HTTP")  # a payload the filter drops
            raw.settimeout(0.5)
            frames = []
            with contextlib.suppress(TimeoutError):
                while True:
                    frames.append(raw.recv(2048))
        payloads = sorted({tcp_payload(f)[:16] for f in frames})
        # only the request and the response came through: no handshake, no other payload
        assert payloads == [b"GET /rbcc-proto ", b"HTTP/1.1 200 OK\r"]
        # lo shows each frame to a raw socket twice (leaving and arriving)
        assert b["kept"][1].value == 2  # to the server: the request
        assert b["kept"][0].value == 2  # from it: the response


# UDP packets to each port, read with proto.h in XDP (direct packet pointers), and those sent to FROM
# moved to port TO (the UDP checksum cleared: it covers the port).
XDP_PORTS = r"""
#include <bcc/proto.h>

BPF_HASH(ports, u16, u64);

int xdp_ports(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethernet_t *eth = data;
    if ((void *)(eth + 1) > data_end || eth->type != ETH_P_IP)
        return XDP_PASS;
    struct ip_t *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->ver != 4 || ip->nextp != IPPROTO_UDP || ip->mf || ip->foffset)
        return XDP_PASS;
    struct udp_t *udp = (void *)ip + ip->hlen * 4;
    if ((void *)(udp + 1) > data_end)
        return XDP_PASS;
    u16 port = udp->dport;
    if (port != FROM && port != TO)
        return XDP_PASS;
    ports.increment(port);
    if (port == FROM) {
        udp->dport = TO;
        udp->crc = 0;
    }
    return XDP_PASS;
}
"""

MODES = BPF.XDP_FLAGS_SKB_MODE


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
            BPF.remove_xdp("lo", MODES)
        assert left == 0, "the test left an XDP program on lo"


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.3)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(sock.recv(256))
    return got


def test_xdp_counts_udp_packets_by_port_and_rewrites_one(lo_free: None) -> None:
    with udp_socket() as first, udp_socket() as second, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        a, b_port = first.getsockname()[1], second.getsockname()[1]
        with BPF(text=XDP_PORTS, cflags=[f"-DFROM={a}", f"-DTO={b_port}"]) as b:
            BPF.attach_xdp("lo", b.load_func("xdp_ports", BPF.XDP), MODES)
            try:
                for i in range(3):
                    out.sendto(b"to-a-%d" % i, ("127.0.0.1", a))
                for i in range(5):
                    out.sendto(b"to-b-%d" % i, ("127.0.0.1", b_port))
                at_first, at_second = drain(first), drain(second)
            finally:
                BPF.remove_xdp("lo", MODES)
            counts = {k.value: v.value for k, v in b["ports"].items()}
    assert counts == {a: 3, b_port: 5}
    # what was sent to the first port was moved to the second
    assert at_first == []
    assert sorted(at_second) == sorted([b"to-a-%d" % i for i in range(3)] + [b"to-b-%d" % i for i in range(5)])


def ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame() -> bytes:
    """Ethernet, IPv4 (DF set, fragment offset 0x123), UDP to 4789, a VXLAN header with VNI 0xabcdef."""
    eth = bytes.fromhex("0200000000010a0b0c0d0e0f") + struct.pack("!H", 0x0800)
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0xB8,
        20 + 8 + 8,
        0x1234,
        0x4000 | 0x123,
        64,
        17,
        0,
        b"\x0a\x00\x00\x01",
        b"\x0a\x00\x00\x02",
    )
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", 5555, 4789, 16, 0xBEEF)
    vxlan = struct.pack("!II", 0x08000000, 0xABCDEF << 8)
    return eth + ip + udp + vxlan


# The same reads and writes through the skb (tc) and through XDP's packet pointer: every field kind (a
# 48-bit and a 16-bit field of ethernet_t, 4-, 1- and 13-bit fields across a byte of ip_t, whole bytes,
# 16 and 32 bits, VXLAN's 24-bit key); got[] holds what was read, the packet what was written.
FIELDS = r"""
    struct ethernet_t *eth = cursor_advance(cursor, sizeof(*eth));
    struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
    struct udp_t *udp = cursor_advance(cursor, sizeof(*udp));
    struct vxlan_t *vxlan = cursor_advance(cursor, sizeof(*vxlan));
    u64 v[16] = {eth->dst, eth->src, eth->type, ip->ver, ip->hlen, ip->tos, ip->tlen, ip->df, ip->mf,
                 ip->foffset, ip->ttl, ip->src, udp->dport, udp->crc, vxlan->iflag, vxlan->key};
    for (int i = 0; i < 16; i++) {
        int k = i;
        got.update(&k, &v[i]);
    }
    eth->src = 0x112233445566;
    ip->hlen = 6;
    ip->df = 0;
    ip->mf = 1;
    ip->foffset = 0x1abc;
    ip->ttl -= 1;
    udp->dport = 4242;
    vxlan->key = 0x123456;
"""

PACKET_FIELDS = (
    r"""
#include <bcc/proto.h>
BPF_ARRAY(got, u64, 16);

int fields_tc(struct __sk_buff *skb) {
    u8 *cursor = 0;
"""
    + FIELDS
    + r"""
    return TC_ACT_OK;
}

int fields_xdp(struct xdp_md *ctx) {
    u8 *cursor = (void *)(long)ctx->data;
    if ((void *)cursor + 14 + 20 + 8 + 8 > (void *)(long)ctx->data_end)
        return XDP_ABORTED;
"""
    + FIELDS
    + r"""
    return XDP_PASS;
}
"""
)


def written(packet: bytes) -> bytes:
    """`packet` (from frame()) as FIELDS leaves it."""
    out = bytearray(packet)
    out[6:12] = bytes.fromhex("112233445566")
    out[14] = 0x46
    struct.pack_into("!H", out, 20, 0x2000 | 0x1ABC)  # DF cleared, MF set
    out[22] = 63
    struct.pack_into("!H", out, 36, 4242)
    out[46:49] = bytes.fromhex("123456")
    return bytes(out)


@pytest.mark.parametrize(("function", "kind", "passed"), [("fields_tc", "SCHED_CLS", 0), ("fields_xdp", "XDP", 2)])
def test_every_kind_of_field_reads_and_writes_its_bits(function: str, kind: str, passed: int) -> None:
    with BPF(text=PACKET_FIELDS) as b:
        fn = b.load_func(function, getattr(BPF, kind))
        packet = frame()
        retval, out = prog_test_run(fn.fd, packet)
        got = [b["got"][i].value for i in range(16)]
    assert retval == passed
    assert got == [
        0x020000000001, 0x0A0B0C0D0E0F, 0x0800,
        4, 5, 0xB8, 36, 1, 0, 0x123, 64, 0x0A000001,
        4789, 0xBEEF, 1, 0xABCDEF,
    ]  # fmt: skip
    assert out == written(packet)


LOADS = r"""
BPF_ARRAY(loaded, u64, 5);
int loads(struct __sk_buff *skb) {
    u64 v[5] = {load_byte(skb, 14), load_half(skb, 12), load_word(skb, 26), load_dword(skb, 0),
                load_word(skb, 4000)};
    for (int i = 0; i < 5; i++) {
        int k = i;
        loaded.update(&k, &v[i]);
    }
    return TC_ACT_OK;
}
"""


def test_load_byte_half_word_read_the_packet_in_network_order() -> None:
    with BPF(text=LOADS) as b:
        prog_test_run(b.load_func("loads", BPF.SCHED_CLS).fd, frame())
        got = [b["loaded"][i].value for i in range(5)]
    # past the packet's end a load reads 0 (bcc's BPF_LD_ABS ended the program there)
    assert got == [0x45, 0x0800, 0x0A000001, 0x0200000000010A0B, 0]


CHECKSUM = r"""
#include <bcc/proto.h>
int move_to(struct __sk_buff *skb) {
    u8 *cursor = 0;
    struct ethernet_t *ethernet = cursor_advance(cursor, sizeof(*ethernet));
    struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));
    u32 old = ip->dst;
    u32 new = 0x0a000063;
    incr_cksum_l3(&ip->hchecksum, old, new);
    ip->dst = new;
    return TC_ACT_OK;
}
"""


def test_incr_cksum_l3_keeps_the_ip_checksum_right_as_the_address_changes() -> None:
    with BPF(text=CHECKSUM) as b:
        _, out = prog_test_run(b.load_func("move_to", BPF.SCHED_CLS).fd, frame())
    assert out[30:34] == bytes([10, 0, 0, 99])
    assert ip_checksum(out[14:34]) == 0


def test_packet_field_misuse_is_a_compile_error_at_the_line() -> None:
    text = "#include <bcc/proto.h>\nint f(struct __sk_buff *skb) {\n  u8 *cursor = 0;\n"
    text += "  struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));\n  ip->ttl++;\n  return 0;\n}\n"
    with pytest.raises(CompileError, match=r":5: error: \+\+ on the packet header field ttl"):
        BPF(text=text)
    no_skb = "#include <bcc/proto.h>\nint f(struct xdp_md *ctx) {\n  struct ip_t *ip = 0;\n"
    no_skb += "  incr_cksum_l3(&ip->hchecksum, 1, 2);\n  return 0;\n}\n"
    with pytest.raises(CompileError, match=r":4: error: incr_cksum_l3\(\) updates the checksum"):
        BPF(text=no_skb)


def test_proto_structs_come_only_with_the_include() -> None:
    """`struct ip_t` is a common name: a program that does not include <bcc/proto.h> may have its own."""
    own = "struct ip_t { u32 addr; };\nBPF_HASH(h, struct ip_t, u64);\n"
    own += "int f(struct __sk_buff *skb) { struct ip_t k = {.addr = skb->len}; h.increment(k); return 0; }\n"
    with BPF(text=own) as b:
        b.load_func("f", BPF.SOCKET_FILTER)


BCC_NETWORKING = Path("/usr/share/doc/bpfcc-tools/examples/networking")


def bcc_example(relative: str) -> Path:
    path = BCC_NETWORKING / relative
    if not path.exists():
        pytest.skip(f"bcc's networking examples are not installed (no {path}: Debian's bpfcc-tools has them)")
    return path


@pytest.mark.parametrize(
    ("example", "functions", "kind"),
    [
        ("http_filter/http-parse-simple.c", ["http_filter"], "SOCKET_FILTER"),
        ("http_filter/http-parse-complete.c", ["http_filter"], "SOCKET_FILTER"),
        ("tunnel_monitor/monitor.c", ["handle_ingress", "handle_egress", "handle_outer", "handle_inner"], "SCHED_CLS"),
        ("vlan_learning/vlan_learning.c", ["handle_phys2virt", "handle_virt2phys"], "SCHED_CLS"),
        ("neighbor_sharing/tc_neighbor_sharing.c", ["classify_wan", "classify_neighbor"], "SCHED_CLS"),
        ("distributed_bridge/tunnel.c", ["handle_ingress", "handle_egress"], "SCHED_CLS"),
    ],
)
def test_bccs_own_packet_programs_compile_and_load(example: str, functions: list[str], kind: str) -> None:
    """bcc's networking examples, as Debian installs them, pass the verifier as the types their scripts load."""
    with BPF(src_file=str(bcc_example(example))) as b:
        for fn in functions:
            b.load_func(fn, getattr(BPF, kind))


def test_bccs_own_http_filter_keeps_an_http_request_and_drops_the_rest() -> None:
    """http-parse-simple.c unchanged, on a raw socket on lo, as its script attaches it."""
    with http_server() as port, BPF(src_file=str(bcc_example("http_filter/http-parse-simple.c"))) as b:
        fn = b.load_func("http_filter", BPF.SOCKET_FILTER)
        BPF.attach_raw_socket(fn, "lo")
        assert fn.sock is not None
        with socket.fromfd(fn.sock, socket.AF_PACKET, socket.SOCK_RAW) as raw:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"GET /rbcc-bcc-example HTTP/1.1\r\n\r\n")
                client.recv(1024)
            with socket.create_connection(("127.0.0.1", port)) as other:
                other.sendall(b"not-http: rbcc-bcc-example")
            raw.settimeout(0.5)
            payloads = []
            with contextlib.suppress(TimeoutError):
                while True:
                    payloads.append(tcp_payload(raw.recv(2048)))
    # the filter keeps any HTTP on lo, another process's too: look for this test's own
    assert any(p.startswith(b"GET /rbcc-bcc-example") for p in payloads)
    assert not any(b"not-http: rbcc-bcc-example" in p for p in payloads)
    assert all(p[:4] in (b"GET ", b"HTTP", b"POST", b"PUT ", b"DELE", b"HEAD") for p in payloads)
