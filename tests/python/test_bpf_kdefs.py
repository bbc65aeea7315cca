"""What bcc programs take from kernel headers and BTF lacks (bpf/rbcc/kdefs.h, kinline.h, the
LINUX_VERSION_CODE define), on the real kernel; and the hint a CompileError gives when a struct is
missing from the kernel's BTF altogether."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

import pytest
from _bpfutil import target_cflags

from rbcc import BPF, CompileError

pytestmark = pytest.mark.needs_root

TCP_STATES = r"""
#include <net/sock.h>
#include <net/inet_sock.h>
#include <linux/tcp.h>
struct est_t { u16 sport; u16 dport; u16 csk_sport; u32 srtt_us; };
BPF_HASH(established, u64, struct est_t);
TRACEPOINT_PROBE(sock, inet_sock_set_state) {
    if (args->protocol != IPPROTO_TCP || args->newstate != TCP_ESTABLISHED)
        return 0;
    struct sock *sk = (struct sock *)args->skaddr;
    struct tcp_sock *tp = tcp_sk(sk);
    struct est_t e = {};
    e.sport = inet_sk(sk)->inet_sport;
    e.dport = inet_sk(sk)->inet_dport;
    e.csk_sport = inet_csk(sk)->icsk_inet.inet_sport;
    e.sport = ntohs(e.sport);
    e.dport = ntohs(e.dport);
    e.csk_sport = ntohs(e.csk_sport);
    e.srtt_us = tp->srtt_us;
    u64 key = (u64)sk;
    established.update(&key, &e);
    return 0;
}
"""


def test_tcp_sk_and_inet_sk_read_a_real_loopback_connection() -> None:
    with BPF(text=TCP_STATES) as b:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname()) as client:
                peer, _ = server.accept()
                peer.close()
                client_port, server_port = client.getsockname()[1], server.getsockname()[1]
        seen = [(e.sport, e.dport, e.csk_sport, e.srtt_us) for e in b["established"].values()]
    ours = [s for s in seen if server_port in s[:2]]
    # the client's socket and the server's new one, each from its own side; inet_csk() sees the same port
    assert sorted((sport, dport, csk) for sport, dport, csk, _ in ours) == sorted(
        [(client_port, server_port, client_port), (server_port, client_port, server_port)]
    )
    # tcp_sk(): the client measured the handshake's round trip before it became established, and the
    # kernel keeps at least 1 there (8 times the smoothed RTT in microseconds: well under a second here)
    client_srtt = [srtt for sport, _, _, srtt in ours if sport == client_port]
    assert len(client_srtt) == 1 and 1 <= client_srtt[0] < 8_000_000


FILE_MODES = r"""
BPF_ITER(task_file) {
    struct task_struct *task = ctx->task;
    struct file *file = ctx->file;
    if (!task || !file || task->tgid != TARGET)
        return 0;
    fmode_t m = file->f_mode;
    BPF_SEQ_PRINTF(ctx->meta->seq, "%d %d %d %d\n", ctx->fd, (m & FMODE_CREATED) != 0,
                   (m & FMODE_READ) != 0, (m & FMODE_WRITE) != 0);
    return 0;
}
"""


def test_fmode_bits_match_the_files_this_process_opened(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.write_text("")
    created = os.open(tmp_path / "created", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    reopened = os.open(existing, os.O_RDWR | os.O_CREAT, 0o600)  # O_CREAT, but the file was there
    read_only = os.open(existing, os.O_RDONLY)
    try:
        with BPF(text=FILE_MODES, cflags=target_cflags()) as b:
            with b.open_iter("bpf_iter__task_file") as it:
                text = it.read().decode()
    finally:
        for fd in (created, reopened, read_only):
            os.close(fd)
    modes = {int(fd): (int(c), int(r), int(w)) for fd, c, r, w in (line.split() for line in text.splitlines())}
    assert modes[created] == (1, 1, 1)
    assert modes[reopened] == (0, 1, 1)
    assert modes[read_only] == (0, 1, 0)


STACK_STRUCTS = r"""
BPF_ARRAY(out, u64, 16);
static void put(int i, u64 v) { out.update(&i, &v); }
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    /* a[0] holds a page, a[1] chains to the array at CHAINED; b[0], the entry of another list, ends it
     * (the addresses are only compared, never followed) */
    struct scatterlist a[2] = {}, b[1] = {};
    a[0].page_link = 0x1000;
    a[1].page_link = CHAINED | SG_CHAIN;
    b[0].page_link = 0x3000 | SG_END;
    put(0, sg_is_last(&a[0]));
    put(1, sg_is_chain(&a[1]));
    put(2, (unsigned long)sg_chain_ptr(&a[1]));
    put(3, (unsigned long)sg_next(&a[0]));
    put(4, sg_is_last(&b[0]));
    put(5, sg_next(&b[0]) == NULL);
    put(6, (unsigned long)sg_page(&b[0]));
    struct sk_buff skb = {};
    put(7, skb_rx_queue_recorded(&skb));
    skb.queue_mapping = 3;
    put(8, skb_rx_queue_recorded(&skb));
    put(9, skb_get_rx_queue(&skb));
    u64 ns = 7 * NSEC_PER_MSEC + 5;
    u32 rem = 0;
    put(10, div_u64(ns, NSEC_PER_MSEC));
    put(11, div64_u64(ns, 2));
    put(12, div_u64_rem(ns, 1000, &rem));
    put(13, rem);
    return 0;
}
"""


def test_scatterlist_queue_and_division_helpers_on_stack_copies() -> None:
    chained = 0xFFFF888012345000
    with BPF(text=STACK_STRUCTS, cflags=target_cflags(CHAINED=f"{chained:#x}UL")) as b:
        os.getppid()
        got = [b["out"][ctypes.c_int(i)].value for i in range(14)]
    ns = 7_000_005
    assert got == [0, 1, chained, chained, 1, 1, 0x3000, 0, 1, 2, 7, ns // 2, ns // 1000, ns % 1000]


KERNEL_SCATTERLIST = r"""
BPF_HASH(lengths, u64, u64);
int count_sgs(struct pt_regs *ctx, struct virtqueue *vq, struct scatterlist **sgs, unsigned int out_sgs) {
    struct scatterlist *sg = sgs[0];
    u64 len = 0;
    for (int n = 0; sg && n < 8; n++) {
        len += sg->length;
        if (sg_is_last(sg))
            break;
        sg = sg_is_chain(sg + 1) ? sg_chain_ptr(sg + 1) : sg + 1;
    }
    u64 key = (u64)vq;
    lengths.update(&key, &len);
    return 0;
}
"""


def test_scatterlist_helpers_pass_the_verifier_on_kernel_pointers() -> None:
    # virtiostat's use: a kprobe on virtqueue_add_sgs walking the kernel's own scatterlists
    with BPF(text=KERNEL_SCATTERLIST) as b:
        fn = b.load_func("count_sgs", BPF.KPROBE)
        assert fn.fd > 0


def _running_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()))


VERSION = r"""
BPF_ARRAY(facts, u64, 4);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int i = 0;
    u64 v = LINUX_VERSION_CODE;
    facts.update(&i, &v);
    i = 1; v = 0;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 4, 0)
    v = 1;
#endif
    facts.update(&i, &v);
    i = 2; v = 0;
#ifdef CAP_OPT_NONE
    v = CAP_OPT_NOAUDIT | CAP_OPT_INSETID;
#endif
    facts.update(&i, &v);
    i = 3; v = 0;
#ifdef ITER_SOURCE
    v = ITER_SOURCE == WRITE;
#endif
    facts.update(&i, &v);
    return 0;
}
"""


def test_version_tests_take_the_running_kernels_branch() -> None:
    with BPF(text=VERSION, cflags=target_cflags()) as b:
        os.getppid()
        code, modern, cap_opts, iter_source = (b["facts"][ctypes.c_int(i)].value for i in range(4))
    assert (code >> 16, (code >> 8) & 0xFF) == _running_version()
    assert modern == 1
    # capable's `#ifdef CAP_OPT_NONE` takes the branch for kernels whose cap_capable() takes options
    assert cap_opts == 0x6
    # uio.h's names for the directions came with 6.1, and only kernels from then on have them
    assert iter_source == (_running_version() >= (6, 1))


PERCPU_ALLOC = r"""
BPF_HASH(allocs, u64, u64);
TRACEPOINT_PROBE(percpu, percpu_alloc_percpu) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u64 ptr = (u64)args->ptr, bytes = args->bytes_alloc;
    allocs.update(&ptr, &bytes);
    return 0;
}
"""


def test_percpu_pointer_fields_of_tracepoints_compile_and_read() -> None:
    # the format says `void __seg_gs * ptr` on x86: memleak --percpu reads it
    if not BPF.tracepoint_exists("percpu", "percpu_alloc_percpu"):
        pytest.skip("this kernel has no percpu:percpu_alloc_percpu tracepoint")
    with BPF(text=PERCPU_ALLOC, cflags=target_cflags()) as b:
        with BPF(text="BPF_PERCPU_ARRAY(per_cpu_counts, u64, 64);"):
            pass  # creating a per-CPU map allocates per-CPU memory in this process
        allocs = [(k.value, v.value) for k, v in b["allocs"].items()]
    assert allocs and all(ptr != 0 and size > 0 for ptr, size in allocs)


ABSENT = r"""
struct %s;
int probe(struct pt_regs *ctx, struct %s *data) {
    return data->first;
}
"""
HINT = (
    "hint: struct {} is not defined in this kernel's BTF "
    "(the code that defines it is not built in, or its module is not loaded)"
)


def test_a_struct_the_kernel_lacks_gets_a_hint() -> None:
    tag = "rbcc_absent_subsystem_data"
    with pytest.raises(CompileError) as err:
        BPF(text=ABSENT % (tag, tag))
    msg = str(err.value)
    assert f"incomplete definition of type 'struct {tag}'" in msg
    assert msg.count("hint: ") == 1
    assert HINT.format(tag) in msg


NFS = r"""
#include <linux/nfs_fs.h>
int trace_commit_done(struct pt_regs *ctx, struct rpc_task *task, struct nfs_commit_data *data) {
    return data->fattr->size;
}
"""


def test_nfsslowers_commit_data_gets_the_hint_on_kernels_without_nfs() -> None:
    if BPF.kernel_struct_has_field("nfs_commit_data", "fattr"):
        pytest.skip("this kernel has NFS built in: struct nfs_commit_data is in its BTF")
    with pytest.raises(CompileError) as err:
        BPF(text=NFS)
    assert HINT.format("nfs_commit_data") in str(err.value)
