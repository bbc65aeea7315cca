"""What tcptop and tcpsubnet share: TCP bytes sent and received per socket, counted where the
sock:sock_send_length and sock:sock_recv_length tracepoints (Linux 6.3+) see a socket call return.

bcc counts tcp_sendmsg's size argument and tcp_cleanup_rbuf's copied bytes with kprobes. The
tracepoints fire when sock_sendmsg()/sock_recvmsg() return (send, write, sendfile and splice to a
socket, io_uring's sends), with the bytes the call really moved; a MSG_PEEK read is not counted (no
data left the socket).
"""

from __future__ import annotations

__all__ = ["RECV_PROBE", "SEND_PROBE", "TCP_BYTES_PROBES"]

# count_send(sk, family, bytes) and count_recv(...) are the tool's (static functions before this: the
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
