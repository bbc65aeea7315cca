"""Implicit kernel-pointer dereferences (`task->real_parent->tgid`), rewritten into probe reads, on the real kernel."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from _bpfutil import poll_until, target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root

PARENT = r"""
#include <linux/sched.h>
BPF_HASH(parents, u32, u32);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 ppid = task->real_parent->tgid;
    parents.update(&pid, &ppid);
    return 0;
}
"""


def test_task_real_parent_tgid_is_our_ppid() -> None:
    with BPF(text=PARENT, cflags=target_cflags()) as b:
        ppid = os.getppid()
        assert [(k.value, v.value) for k, v in b["parents"].items()] == [(os.getpid(), ppid)]
    assert ppid > 0


EXEC = r"""
#include <linux/sched.h>
struct exec_t { u32 pid; u32 ppid; char comm[TASK_COMM_LEN]; };
BPF_PERF_OUTPUT(execs);
RAW_TRACEPOINT_PROBE(sched_process_exec) {
    struct task_struct *p = (struct task_struct *)ctx->args[0];
    struct exec_t e = {};
    e.ppid = p->real_parent->tgid;
    if (e.ppid != TARGET)
        return 0;
    e.pid = p->tgid;
    bpf_probe_read_kernel_str(&e.comm, sizeof(e.comm), p->comm);
    execs.perf_submit(ctx, &e, sizeof(e));
    return 0;
}
"""


def test_raw_tracepoint_reads_task_fields_of_an_exec() -> None:
    with BPF(text=EXEC, cflags=target_cflags()) as b:
        seen: list[tuple[int, int, bytes]] = []

        def on_exec(cpu: int, data: int, size: int) -> None:
            e = b["execs"].event(data)
            seen.append((e.pid, e.ppid, e.comm))

        b["execs"].open_perf_buffer(on_exec)
        child = subprocess.run(["/bin/true"], check=True)
        assert child.returncode == 0
        proc = subprocess.Popen(["/bin/true"])
        proc.wait()
        assert poll_until(b.perf_buffer_poll, lambda: any(pid == proc.pid for pid, _, _ in seen))
        b.perf_buffer_poll(100)
    assert len(seen) == 2
    assert (proc.pid, os.getpid(), b"true") in seen
    assert all(ppid == os.getpid() and comm == b"true" for _, ppid, comm in seen)


HELPERS = r"""
#include <linux/sched.h>
struct who_t { u32 pid; u32 ppid; };
BPF_HASH(seen, u32, struct who_t);
// a kernel struct behind a helper's pointer parameter: read with probe reads like in the probe itself
static u32 parent_of(struct task_struct *t) {
    return t->real_parent->tgid;
}
// a struct passed by value: only possible because helpers are inlined
static void remember(struct who_t w) {
    seen.update(&w.pid, &w);
}
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct who_t w = {};
    w.pid = bpf_get_current_pid_tgid() >> 32;
    if (w.pid != TARGET)
        return 0;
    w.ppid = parent_of((struct task_struct *)bpf_get_current_task());
    remember(w);
    return 0;
}
"""


def test_static_helpers_read_kernel_structs_and_take_structs_by_value() -> None:
    with BPF(text=HELPERS, cflags=target_cflags()) as b:
        ppid = os.getppid()
        got = {k.value: (v.pid, v.ppid) for k, v in b["seen"].items()}
    assert got == {os.getpid(): (os.getpid(), ppid)}


EXEC_FILENAME = r"""
struct exec_t { u32 pid; char filename[64]; };
BPF_PERF_OUTPUT(execs);
TRACEPOINT_PROBE(sched, sched_process_exec) {
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (task->real_parent->tgid != TARGET)
        return 0;
    struct exec_t e = {};
    e.pid = args->pid;
    TP_DATA_LOC_READ_STR(e.filename, filename, sizeof(e.filename));
    execs.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def test_tp_data_loc_read_str_reads_a_data_loc_field() -> None:
    true = "/bin/true"
    with BPF(text=EXEC_FILENAME, cflags=target_cflags()) as b:
        seen: list[tuple[int, bytes]] = []

        def on_exec(cpu: int, data: int, size: int) -> None:
            e = b["execs"].event(data)
            seen.append((e.pid, e.filename))

        b["execs"].open_perf_buffer(on_exec)
        child = subprocess.run([true], check=True)
        assert child.returncode == 0
        assert poll_until(b.perf_buffer_poll, lambda: len(seen) >= 1)
    assert [f for _, f in seen] == [true.encode()]


ADDRESSES = r"""
#include <linux/sched.h>
#define PARENT_SLOT(t) (&(t)->real_parent)
struct addr_t { u64 task; u64 slot; u64 macro_slot; u64 offset; u64 parent; u64 parent_via_slot; u32 ppid; };
BPF_HASH(addrs, u32, struct addr_t);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct addr_t a = {};
    a.task = (u64)task;
    a.slot = (u64)&task->real_parent;
    a.macro_slot = (u64)PARENT_SLOT(task);
    a.offset = offsetof(struct task_struct, real_parent);
    a.parent = (u64)task->real_parent;
    bpf_probe_read_kernel(&a.parent_via_slot, sizeof(a.parent_via_slot), (void *)a.slot);
    a.ppid = task->real_parent->tgid;
    addrs.update(&pid, &a);
    return 0;
}
"""


def test_address_of_a_member_through_a_kernel_pointer_is_pointer_arithmetic() -> None:
    with BPF(text=ADDRESSES, cflags=target_cflags()) as b:
        ppid = os.getppid()
        got = {k.value: v for k, v in b["addrs"].items()}
    a = got[os.getpid()]
    assert a.task != 0 and a.offset > 0
    # `&task->real_parent` (written out, through a macro, and as offsetof's `&((type *)0)->member`) is
    # an address, not a value read from it.
    assert a.slot == a.macro_slot == a.task + a.offset
    # Read back through that address: the same parent the implicit reads found, and its tgid is ours.
    assert a.parent_via_slot == a.parent != 0
    assert a.ppid == ppid


# mountsnoop's private copy of `struct mnt_namespace` (vmlinux.h has the kernel's, a much larger one).
OWN_MNT_NAMESPACE = r"""
#include <linux/sched.h>
#include <linux/nsproxy.h>
#include <linux/ns_common.h>
struct mnt_namespace {
    struct ns_common ns;
};
struct ns_t { u32 inum; u32 size; u32 end_of_ns; };
BPF_HASH(mnt_ns_of, u32, struct ns_t);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    struct nsproxy *nsproxy = task->nsproxy;
    struct mnt_namespace *mnt_ns = nsproxy->mnt_ns;
    struct ns_t n = {};
    n.inum = mnt_ns->ns.inum;
    n.size = sizeof(struct mnt_namespace);
    n.end_of_ns = offsetof(struct mnt_namespace, ns) + sizeof(struct ns_common);
    mnt_ns_of.update(&pid, &n);
    return 0;
}
"""


def test_a_kernel_struct_the_program_defines_again_reads_a_real_field() -> None:
    with BPF(text=OWN_MNT_NAMESPACE, cflags=target_cflags()) as b:
        os.getppid()
        got = {k.value: (v.inum, v.size, v.end_of_ns) for k, v in b["mnt_ns_of"].items()}
    inum, size, end_of_ns = got[os.getpid()]
    # The program reads with its own layout (it ends with `ns`), and finds our mount namespace.
    assert size == end_of_ns
    assert inum == os.stat("/proc/self/ns/mnt").st_ino


# tcpdrop's chain on a packet leaving through lo: the tracepoint's `void *skbaddr` taken as a
# `struct sk_buff *`, its socket, the socket's ports (also once through a map that keeps the pointer),
# and the TCP header found by a helper from skb->head + skb->transport_header.
SKB_SOCK_PORTS = r"""
#include <net/sock.h>
#include <uapi/linux/tcp.h>
struct seen_t { u16 sport; u16 dport; u16 th_sport; u16 th_dport; u8 state; u8 map_state; };
BPF_HASH(socks, u32, struct sock *);
BPF_HASH(by_flags, u8, struct seen_t);
static struct tcphdr *skb_to_tcphdr(const struct sk_buff *skb) {
    return (struct tcphdr *)(skb->head + skb->transport_header);
}
TRACEPOINT_PROBE(net, net_dev_queue) {
    struct sk_buff *skb = args->skbaddr;
    struct sock *sk = skb->sk;
    if (sk == NULL || sk->__sk_common.skc_family != AF_INET)
        return 0;
    if (ntohs(sk->__sk_common.skc_dport) != PORT)
        return 0;
    u32 tid = bpf_get_current_pid_tgid();
    socks.update(&tid, &sk);
    struct sock **skpp = socks.lookup(&tid);
    if (skpp == 0)
        return 0;
    struct sock *skp = *skpp;
    socks.delete(&tid);
    struct tcphdr *th = skb_to_tcphdr(skb);
    u8 flags = ((u8 *)th)[13];
    struct seen_t s = {};
    s.sport = sk->__sk_common.skc_num;
    s.dport = ntohs(sk->__sk_common.skc_dport);
    s.th_sport = ntohs(th->source);
    s.th_dport = ntohs(th->dest);
    s.state = sk->__sk_common.skc_state;
    s.map_state = skp->__sk_common.skc_state;
    by_flags.update(&flags, &s);
    return 0;
}
"""
TCP_SYN, TCP_PSH_ACK = 0x02, 0x18
TCP_ESTABLISHED, TCP_SYN_SENT = 1, 2


def test_skb_to_sock_to_ports_on_a_loopback_connection() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with BPF(text=SKB_SOCK_PORTS, cflags=target_cflags(PORT=port)) as b:
            with socket.create_connection(("127.0.0.1", port)) as client:
                accepted, _ = server.accept()
                with accepted:
                    client.sendall(b"rbcc")
                    assert accepted.recv(16) == b"rbcc"
                local = client.getsockname()[1]
            seen = {
                k.value: (v.sport, v.dport, v.th_sport, v.th_dport, v.state, v.map_state)
                for k, v in b["by_flags"].items()
            }
            assert len(b["socks"]) == 0
    # The client's SYN and its data segment, each with the socket's ports, the header's, and its state
    # (read directly and through the pointer kept in the map).
    assert seen[TCP_SYN] == (local, port, local, port, TCP_SYN_SENT, TCP_SYN_SENT)
    assert seen[TCP_PSH_ACK] == (local, port, local, port, TCP_ESTABLISHED, TCP_ESTABLISHED)
