"""C the socket tools share where bcc reads a ``struct sock *`` from a kprobe's argument and this
kernel has only the syscall tracepoints: the socket behind a file descriptor of the current task
(task->files->fdt->fd[fd]->private_data, when that file's inode is a socket), and a socket's network
namespace number."""

from __future__ import annotations

from . import block

__all__ = ["ACCEPTED_TCP", "SOCK_OF_FD", "netns_skip"]

# The socket behind a descriptor is the file behind it (block.FILE_OF_FD, which the file tools use too,
# so it is included here: a program takes one or the other) when that file's inode is a socket.
# S_IFMT and S_IFSOCK are macros (no BTF): their values from linux/stat.h
SOCK_OF_FD = (
    block.FILE_OF_FD
    + r"""
static __always_inline struct socket *socket_of_fd(int fd) {
    struct file *file = file_of_fd(fd);
    if (!file)
        return NULL;
    if ((BPF_CORE_READ(file, f_inode, i_mode) & 00170000) != 0140000)
        return NULL;  // not a socket's file: its private_data is something else
    return (struct socket *)BPF_CORE_READ(file, private_data);
}

static __always_inline struct sock *sock_of_fd(int fd) {
    struct socket *sock = socket_of_fd(fd);
    return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

static __always_inline u32 netns_of(struct sock *sk) {
    return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}
"""
)

# What tcpaccept and tcptracer see of an accept: bcc takes the new socket from inet_csk_accept's return
# (a kretprobe); here accept() and accept4() return its descriptor, and the socket is read through it
# as they return. SOCK_OF_FD is included. The tool defines on_accept(ctx, ret), which the two syscall
# exits call, and finds the socket with accepted_tcp_sock(ret): NULL for a failed accept or another
# protocol than TCP.
ACCEPTED_TCP = (
    SOCK_OF_FD
    + r"""
static __always_inline struct sock *accepted_tcp_sock(long ret) {
    if (ret < 0)
        return NULL;
    struct sock *sk = sock_of_fd((int)ret);
    if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
        return NULL;
    return sk;
}

static __always_inline int on_accept(void *ctx, long ret);

TRACEPOINT_PROBE(syscalls, sys_exit_accept) {
    return on_accept(args, args->ret);
}

TRACEPOINT_PROBE(syscalls, sys_exit_accept4) {
    return on_accept(args, args->ret);
}
"""
)


def netns_skip(var: str, netns: int | None) -> str:
    """A C condition, true for a namespace number other than ``netns`` (0 or None keeps all)."""
    return f"{var} != {int(netns)}" if netns else "0"
