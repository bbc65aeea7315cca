"""The special-purpose map kinds on the real kernel, each from a raw libbpf map of that type: LPM
tries, maps of maps, XDP redirect maps (DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP) and socket maps."""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
from collections.abc import Iterator

import pytest
from _bpfutil import target_cflags

from rbcc import BPF
from rbcc.errors import BPFError
from rbcc.table import (
    Array,
    ArrayBase,
    CpuMap,
    DevMap,
    DevMapHash,
    HashTable,
    LpmTrie,
    MapInMapArray,
    MapInMapHash,
    SockHash,
    SockMap,
    XskMap,
    get_table_type_name,
)

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
struct lpm_key { u32 prefixlen; u8 addr[4]; };
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16); __type(key, struct lpm_key); __type(value, u32);
         __uint(map_flags, BPF_F_NO_PREALLOC); } routes SEC(".maps");

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, u32); __type(value, u64); }
    inner_a SEC(".maps"), inner_b SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 4);
         __type(key, u32); __array(values, struct inner); }
    outer SEC(".maps") = { .values = { [0] = &inner_a } };
struct { __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS); __uint(max_entries, 4);
         __type(key, u32); __array(values, struct inner); }
    outer_hash SEC(".maps");

struct { __uint(type, BPF_MAP_TYPE_DEVMAP); __uint(max_entries, 4);
         __type(key, u32); __type(value, u32); } devs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_DEVMAP_HASH); __uint(max_entries, 4);
         __type(key, u32); __type(value, u32); } devs_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_CPUMAP); __uint(max_entries, 1);
         __type(key, u32); __type(value, struct bpf_cpumap_val); } cpus SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_XSKMAP); __uint(max_entries, 2);
         __type(key, u32); __type(value, u32); } xsks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 2);
         __type(key, u32); __type(value, u64); } socks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_SOCKHASH); __uint(max_entries, 2);
         __type(key, u32); __type(value, u64); } socks_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, u64); } route_seen SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 8); __type(value, u32); } bloom SEC(".maps");

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    // through whatever map Python put in the outer slots: count in slot 0 of each inner map
    for (u32 slot = 0; slot < 2; slot++) {
        void *inner = bpf_map_lookup_elem(&outer, &slot);
        if (!inner)
            continue;
        u32 zero = 0;
        u64 *n = bpf_map_lookup_elem(inner, &zero);
        if (n)
            *n += slot + 1;
    }
    u32 k = 7;
    void *inner = bpf_map_lookup_elem(&outer_hash, &k);
    if (inner) {
        u32 one = 1;
        u64 *n = bpf_map_lookup_elem(inner, &one);
        if (n)
            *n += 100;
    }
    struct lpm_key addr = {.prefixlen = 32, .addr = {10, 1, 2, 3}};
    u32 *route = bpf_map_lookup_elem(&routes, &addr);
    u32 zero = 0;
    u64 found = route ? *route : 0;
    bpf_map_update_elem(&route_seen, &zero, &found, BPF_ANY);
    return 0;
}
"""


@pytest.fixture(scope="module")
def bpf() -> Iterator[BPF]:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        yield b


def test_each_map_type_gets_bccs_class(bpf: BPF) -> None:
    kinds = {
        "routes": LpmTrie,
        "outer": MapInMapArray,
        "outer_hash": MapInMapHash,
        "devs": DevMap,
        "devs_hash": DevMapHash,
        "cpus": CpuMap,
        "xsks": XskMap,
        "socks": SockMap,
        "socks_hash": SockHash,
    }
    for name, cls in kinds.items():
        assert type(bpf[name]) is cls, name
    for name in ("outer", "devs", "cpus", "xsks", "socks"):
        assert isinstance(bpf[name], ArrayBase)
    for name in ("outer_hash", "devs_hash", "socks_hash"):
        assert isinstance(bpf[name], HashTable)


def test_a_map_type_without_a_table_is_named(bpf: BPF) -> None:
    assert get_table_type_name(30) == "BLOOM_FILTER"
    with pytest.raises(BPFError, match=r"map 'bloom' has type 30 \(BLOOM_FILTER\)"):
        bpf["bloom"]


def test_lpm_trie_longest_prefix_wins_for_the_program_and_python(bpf: BPF) -> None:
    routes = bpf["routes"]
    routes.clear()
    assert [f[0] for f in routes.Key._fields_] == ["prefixlen", "addr"]
    routes[(8, "10.0.0.0")] = 1
    routes[routes.Key(16, (10, 1, 0, 0))] = 2
    routes[(24, bytes([10, 1, 2, 0]))] = 3
    routes[(32, "10.1.2.4")] = 4
    assert routes[(32, "10.1.2.3")].value == 3
    assert routes[(32, "10.200.0.1")].value == 1
    assert routes.get((32, "11.0.0.0")) is None
    os.getppid()
    assert bpf["route_seen"][0].value == 3
    del routes[(24, "10.1.2.0")]
    assert routes[(32, "10.1.2.3")].value == 2
    os.getppid()
    assert bpf["route_seen"][0].value == 2
    assert sorted((k.prefixlen, bytes(k.addr), v.value) for k, v in routes.items()) == [
        (8, bytes([10, 0, 0, 0]), 1),
        (16, bytes([10, 1, 0, 0]), 2),
        (32, bytes([10, 1, 2, 4]), 4),
    ]
    with pytest.raises(NotImplementedError):
        len(routes)  # as in bcc
    with pytest.raises(ValueError, match="prefixlen 33"):
        routes[(33, "10.0.0.0")]
    with pytest.raises(ValueError, match="does not fit"):
        routes[(64, "::1")]


def test_map_in_map_slots_take_tables_and_read_back_as_map_ids(bpf: BPF) -> None:
    outer, inner_a, inner_b = bpf["outer"], bpf["inner_a"], bpf["inner_b"]
    assert isinstance(inner_a, Array)
    inner_a.zero()
    # slot 0 was set in C; point slot 1 at inner_b, from Python
    outer[1] = inner_b
    ids = {k.value: v.value for k, v in outer.items()}
    assert set(ids) == {0, 1} and ids[0] != ids[1] and all(ids.values())
    inner_b[0] = 0
    os.getppid()
    # the program reached inner_a through slot 0 (+1) and inner_b through slot 1 (+2)
    assert inner_a[0].value == 1
    assert inner_b[0].value == 2
    del outer[1]
    assert outer.get(1) is None
    # a hash of maps: a table, a raw fd or a core map all name the inner map
    outer_hash = bpf["outer_hash"]
    inner_b[1] = 5
    outer_hash[7] = inner_b.get_fd()
    outer_hash[8] = inner_a
    assert {k.value for k in outer_hash} == {7, 8}
    assert outer_hash[7].value == ids[1]
    os.getppid()
    assert inner_b[1].value == 105
    outer_hash.clear()
    assert len(outer_hash) == 0


def test_devmap_holds_interfaces(bpf: BPF) -> None:
    devs = bpf["devs"]
    lo = socket.if_nametoindex("lo")
    devs[0] = "lo"  # an interface name is looked up
    devs[2] = lo
    assert {k.value: v.value for k, v in devs.items()} == {0: lo, 2: lo}
    assert devs.get(1) is None  # empty slots read as absent
    del devs[0]
    assert [k.value for k, _ in devs.items()] == [2]
    devs_hash = bpf["devs_hash"]
    devs_hash[1234] = "lo"
    assert devs_hash[1234].value == lo
    with pytest.raises(BPFError):
        devs_hash[1] = 0x7FFFFFFF  # no such interface


def test_cpumap_takes_a_queue_size(bpf: BPF) -> None:
    cpus = bpf["cpus"]
    assert [f[0] for f in cpus.Leaf._fields_ if not f[0].startswith("__")][:1] == ["qsize"]
    cpu = 0
    cpus[cpu] = cpus.Leaf(qsize=192)
    assert cpus[cpu].qsize == 192
    del cpus[cpu]
    assert cpus.get(cpu) is None
    with pytest.raises(BPFError, match="Value too large"):
        cpus[cpu] = cpus.Leaf(qsize=1 << 20)  # the kernel caps the queue at 16384 packets
    cpus[cpu] = cpus.Leaf(qsize=64)
    cpus[cpu] = cpus.Leaf(qsize=0)  # for the kernel, an empty queue is a deletion
    assert cpus.get(cpu) is None


libc = ctypes.CDLL(None, use_errno=True)
AF_XDP, SOL_XDP, XDP_COPY = 44, 283, 2
XDP_RX_RING, XDP_UMEM_REG, XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING = 2, 4, 5, 6


class _UmemReg(ctypes.Structure):
    _fields_ = [
        ("addr", ctypes.c_uint64),
        ("len", ctypes.c_uint64),
        ("chunk_size", ctypes.c_uint32),
        ("headroom", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
    ]


class _SockaddrXdp(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
        ("ifindex", ctypes.c_uint32),
        ("queue_id", ctypes.c_uint32),
        ("shared_umem_fd", ctypes.c_uint32),
    ]


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        pytest.skip(f"cannot set up an AF_XDP socket on lo ({what}: {os.strerror(err)})")


@pytest.fixture
def xdp_socket() -> Iterator[int]:
    """An AF_XDP socket bound to queue 0 of lo in copy mode: what an XSKMAP slot holds."""
    fd = libc.socket(AF_XDP, socket.SOCK_RAW, 0)
    _check(fd, "socket")
    area = mmap.mmap(-1, 16 * 4096)
    buf = (ctypes.c_char * len(area)).from_buffer(area)
    try:
        reg = _UmemReg(ctypes.addressof(buf), len(area), 4096, 0, 0)
        _check(libc.setsockopt(fd, SOL_XDP, XDP_UMEM_REG, ctypes.byref(reg), ctypes.sizeof(reg)), "umem")
        entries = ctypes.c_int(16)
        for ring in (XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING, XDP_RX_RING):
            _check(libc.setsockopt(fd, SOL_XDP, ring, ctypes.byref(entries), 4), "rings")
        addr = _SockaddrXdp(AF_XDP, XDP_COPY, socket.if_nametoindex("lo"), 0, 0)
        _check(libc.bind(fd, ctypes.byref(addr), ctypes.sizeof(addr)), "bind")
        yield fd
    finally:
        os.close(fd)
        del buf
        area.close()


def test_xskmap_takes_an_af_xdp_socket_but_never_gives_it_back(bpf: BPF, xdp_socket: int) -> None:
    xsks = bpf["xsks"]
    with pytest.raises(BPFError, match="Operation not supported"):
        xsks[0] = socket.socket()  # not an AF_XDP socket
    xsks[0] = xdp_socket
    with pytest.raises(BPFError, match="XSKMAP: the kernel does not let user space read"):
        xsks[0]
    BPF_EXIST = 2
    xsks.update(0, xdp_socket, BPF_EXIST)  # replaces the socket that is there
    del xsks[0]
    with pytest.raises(BPFError, match="No such file"):
        xsks.update(0, xdp_socket, BPF_EXIST)  # now there is none


def _cookie(sock: socket.socket) -> int:
    SO_COOKIE = 57
    return int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")


def test_sockmap_and_sockhash_take_sockets_and_read_back_cookies(bpf: BPF) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client, server.accept()[0] as peer:
            socks, socks_hash = bpf["socks"], bpf["socks_hash"]
            socks[0] = client
            socks[1] = peer.fileno()
            assert {k.value: v.value for k, v in socks.items()} == {0: _cookie(client), 1: _cookie(peer)}
            socks_hash[99] = peer
            assert socks_hash[99].value == _cookie(peer)
            del socks[0]
            assert socks.get(0) is None
            socks_hash.clear()
            assert len(socks_hash) == 0
            with open(os.devnull) as not_a_socket, pytest.raises(BPFError, match="socket"):
                socks[0] = not_a_socket
