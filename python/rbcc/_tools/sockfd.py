"""C the socket tools share where bcc reads a ``struct sock *`` from a kprobe's argument and this
kernel has only the syscall tracepoints: the socket behind a file descriptor of the current task
(task->files->fdt->fd[fd]->private_data, when that file's inode is a socket), and a socket's network
namespace number."""

from __future__ import annotations

__all__ = ["SOCK_OF_FD", "netns_skip"]

# S_IFMT and S_IFSOCK are macros (no BTF): their values from linux/stat.h
SOCK_OF_FD = r"""
static __always_inline struct socket *socket_of_fd(int fd) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *file = NULL;
    bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
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


def netns_skip(var: str, netns: int | None) -> str:
    """A C condition, true for a namespace number other than ``netns`` (0 or None keeps all)."""
    return f"{var} != {int(netns)}" if netns else "0"
