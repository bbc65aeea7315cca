"""What tcptop and tcpsubnet share: TCP bytes sent and received per socket, counted where the
sock:sock_send_length and sock:sock_recv_length tracepoints (Linux 6.3+) see a socket call return,
or, on older kernels, with bcc's kprobes on tcp_sendmsg and tcp_cleanup_rbuf.

The tracepoints fire when sock_sendmsg()/sock_recvmsg() return (send, write, sendfile and splice to a
socket, io_uring's sends), with the bytes the call really moved; a MSG_PEEK read is not counted (no
data left the socket). bcc's kprobes count tcp_sendmsg's size argument (what was asked) and the
bytes tcp_cleanup_rbuf is told were copied.
"""

from __future__ import annotations

from .. import BPF, _core
from ..errors import KernelFeatureError
from . import common

__all__ = ["RECV_PROBE", "SEND_PROBE", "TCP_BYTES_PROBES", "attach", "probes", "source"]

# count_send(sk, family, bytes) and count_recv(...) are the tool's (static functions before these: the
# rewriter does not see map methods in macros): called for a TCP socket of family AF_INET/AF_INET6, in
# the task that made the call, with the bytes moved (> 0).
SEND_PROBE = r"""
TRACEPOINT_PROBE(sock, sock_send_length) {
    if (args->protocol != IPPROTO_TCP || args->ret <= 0)
        return 0;
    if (args->family != AF_INET && args->family != AF_INET6)
        return 0;
    count_send((struct sock *)args->sk, args->family, args->ret);
    return 0;
}
"""

RECV_PROBE = r"""
TRACEPOINT_PROBE(sock, sock_recv_length) {
    if (args->protocol != IPPROTO_TCP || args->ret <= 0 || (args->flags & 2 /* MSG_PEEK */))
        return 0;
    if (args->family != AF_INET && args->family != AF_INET6)
        return 0;
    count_recv((struct sock *)args->sk, args->family, args->ret);
    return 0;
}
"""

TCP_BYTES_PROBES = SEND_PROBE + RECV_PROBE

# bcc's sources, for kernels before the tracepoints (attached by attach(), not auto-attached by a
# kprobe__ name: so the C loads, and passes the verifier, on a kernel without kprobes too)
SEND_KPROBE = r"""
int trace_tcp_sendmsg(struct pt_regs *ctx, struct sock *sk, struct msghdr *msg, size_t size) {
    u16 family = sk->__sk_common.skc_family;
    if (family == AF_INET || family == AF_INET6)
        count_send(sk, family, size);
    return 0;
}
"""

RECV_KPROBE = r"""
int trace_tcp_cleanup_rbuf(struct pt_regs *ctx, struct sock *sk, int copied) {
    u16 family = sk->__sk_common.skc_family;
    if (copied > 0 && (family == AF_INET || family == AF_INET6))
        count_recv(sk, family, copied);
    return 0;
}
"""

MISSING = (
    "needs the sock:sock_send_length tracepoint (Linux 6.3+) or kprobes on tcp_sendmsg/tcp_cleanup_rbuf, "
    "and this kernel has neither"
)


def source() -> str:
    """ "tracepoint" where this kernel has sock:sock_send_length, else "kprobe" where it has kprobes."""
    found = common.first_of(
        [
            ("tracepoint", lambda: BPF.tracepoint_exists("sock", "sock_send_length")),
            ("kprobe", _core.has_kprobes),
        ]
    )
    if found is None:
        raise KernelFeatureError(MISSING, feature="sock:sock_send_length tracepoint or kprobes")
    return found


def probes(kind: str, receive: bool = True) -> str:
    """The C of ``kind`` ("tracepoint" or "kprobe") for sends, and receives unless ``receive`` is False."""
    send, recv = (SEND_PROBE, RECV_PROBE) if kind == "tracepoint" else (SEND_KPROBE, RECV_KPROBE)
    return send + (recv if receive else "")


def attach(b: BPF, kind: str, receive: bool = True) -> None:
    """Attach the kprobes of the "kprobe" source (the tracepoints attach themselves)."""
    if kind != "kprobe":
        return
    b.attach_kprobe(event="tcp_sendmsg", fn_name="trace_tcp_sendmsg")
    if receive:
        b.attach_kprobe(event="tcp_cleanup_rbuf", fn_name="trace_tcp_cleanup_rbuf")
