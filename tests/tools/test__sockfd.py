"""The socket tools' shared C (rbcc._tools.sockfd): the socket behind a file descriptor, read in a
syscall tracepoint, for a TCP socket, a UDP socket and a pipe; and the -N/-n condition."""

from __future__ import annotations

import ctypes
import os
import socket

import pytest
from _bpfutil import poll_until

from rbcc import BPF
from rbcc._tools import sockfd

PROGRAM = r"""
#include <net/sock.h>

struct seen_t {
    int found;
    u16 port;
    u16 protocol;
    u32 netns;
};

BPF_HASH(seen, int, struct seen_t);

SOCK_OF_FD_C

// getpeername(fd, NULL, NULL) fails (EFAULT) after the lookup: it only names the fd to the probe
TRACEPOINT_PROBE(syscalls, sys_enter_getpeername) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int fd = args->fd;
    struct seen_t s = {};
    struct sock *sk = sock_of_fd(fd);
    if (sk) {
        s.found = 1;
        s.port = BPF_CORE_READ(sk, __sk_common.skc_num);
        s.protocol = BPF_CORE_READ(sk, sk_protocol);
        s.netns = netns_of(sk);
    }
    seen.update(&fd, &s);
    return 0;
}
"""


def test_netns_condition() -> None:
    assert sockfd.netns_skip("e.netns", None) == "0" and sockfd.netns_skip("e.netns", 0) == "0"
    assert sockfd.netns_skip("e.netns", 4026531840) == "e.netns != 4026531840"


def _ask(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getpeername(fd, None, None)


@pytest.mark.needs_root
def test_the_socket_behind_a_file_descriptor() -> None:
    text = PROGRAM.replace("SOCK_OF_FD_C", sockfd.SOCK_OF_FD).replace("TARGET", str(os.getpid()))
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    r, w = os.pipe()
    with BPF(text=text) as b:
        for fd in (tcp.fileno(), udp.fileno(), r, 100_000):
            _ask(fd)
        seen = b["seen"]
        assert poll_until(lambda ms: None, lambda: len(seen.items()) == 4)
        got = {k.value: v for k, v in seen.items()}
    netns = os.stat("/proc/self/ns/net").st_ino
    t, u = got[tcp.fileno()], got[udp.fileno()]
    assert (t.found, t.port, t.protocol, t.netns) == (1, tcp.getsockname()[1], socket.IPPROTO_TCP, netns)
    assert (u.found, u.port, u.protocol) == (1, udp.getsockname()[1], socket.IPPROTO_UDP)
    assert got[r].found == 0 and got[100_000].found == 0  # a pipe; an fd past the table
    for s in (tcp, udp):
        s.close()
    os.close(r)
    os.close(w)
