"""bcc's program-level BPF methods on the real kernel: load_func/load_funcs (the type the kernel gets),
dump_func, the program/attach type numbers, num_open_* bookkeeping, monotonic_time against
bpf_ktime_get_ns, and get_kprobe_functions."""

from __future__ import annotations

import os
import re
import struct
import time

import pytest
from _bpfutil import target_cflags

from rbcc import BPF, BPFAttachType, BPFError, BPFProgType, KernelFeatureError, XDPAction
from rbcc._probes.programs import Function

pytestmark = pytest.mark.needs_root


def fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def bpf_programs_open() -> int:
    """How many BPF programs this process holds fds of."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:bpf-prog"
        except OSError:
            pass  # the fd of the listing itself, closed meanwhile
    return count


def test_type_numbers_are_the_kernels() -> None:
    """Every number is checked against the running kernel's own enums (its BTF) by the compiler."""
    checks = [f"BPF_PROG_TYPE_{name} == {value}" for name, value in vars(BPFProgType).items() if name.isupper()]
    checks += [f"BPF_{name} == {value}" for name, value in vars(BPFAttachType).items() if name.isupper()]
    checks += [f"{name} == {value}" for name, value in vars(XDPAction).items() if name.isupper()]
    assert len(checks) == 21 + 39 + 5
    asserts = "\n".join(f'_Static_assert({c}, "{c}");' for c in checks)
    BPF(text=asserts + "\nint f(void *ctx) { return 0; }\n").cleanup()
    # the names bcc keeps on BPF itself
    assert (BPF.SOCKET_FILTER, BPF.KPROBE, BPF.XDP, BPF.CGROUP_SKB, BPF.SK_MSG, BPF.LSM) == (1, 2, 6, 8, 16, 29)
    assert (BPF.XDP_DROP, BPF.XDP_PASS, BPF.XDP_REDIRECT) == (1, 2, 4)
    assert (BPF.XDP_FLAGS_UPDATE_IF_NOEXIST, BPF.XDP_FLAGS_SKB_MODE, BPF.XDP_FLAGS_DRV_MODE) == (1, 2, 4)
    assert (BPF.XDP_FLAGS_HW_MODE, BPF.XDP_FLAGS_REPLACE) == (8, 16)
    assert (BPF.TRACE_FENTRY, BPF.TRACE_FEXIT, BPF.MODIFY_RETURN, BPF.LSM_MAC) == (24, 25, 26, 27)


FUNCS = r"""
BPF_ARRAY(counts, u64, 7);

int pass_all(struct xdp_md *ctx) {
    return XDP_PASS;
}

int keep_none(struct __sk_buff *skb) {
    return 0;
}

int on_getppid(void *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int slot = 3;
    counts.increment(slot);
    return 0;
}
"""


def test_load_func_loads_the_type_asked_for() -> None:
    with BPF(text=FUNCS, cflags=target_cflags()) as b:
        fn = b.load_func("pass_all", BPF.XDP)
        assert isinstance(fn, BPF.Function) and BPF.Function is Function
        assert (fn.name, fn.bpf, fn.prog_type, fn.sock) == (b"pass_all", b, BPF.XDP, None)
        assert fdinfo(fn.fd)["prog_type"] == str(BPF.XDP)
        assert b.load_func(b"pass_all", BPF.XDP) is fn  # loaded once; str or bytes names
        assert b.funcs == {b"pass_all": fn}
        # keep_none takes an __sk_buff (a socket filter by default): loaded as the type asked for
        cls = b.load_func("keep_none", BPF.SCHED_CLS)
        assert fdinfo(cls.fd)["prog_type"] == str(BPF.SCHED_CLS)
        assert repr(cls) == f"<BPF.Function keep_none (BPF.SCHED_CLS) fd={cls.fd}>"


def test_load_func_with_an_expected_attach_type() -> None:
    text = "int connect4(struct bpf_sock_addr *ctx) { return 1; }"
    with BPF(text=text) as b:
        with pytest.raises(BPFError, match=r"cannot load connect4 as BPF.CGROUP_SOCK_ADDR:(.|\n)*need attach_type="):
            b.load_func("connect4", BPF.CGROUP_SOCK_ADDR)
        fn = b.load_func("connect4", BPF.CGROUP_SOCK_ADDR, attach_type=BPFAttachType.CGROUP_INET4_CONNECT)
        assert fdinfo(fn.fd)["prog_type"] == str(BPF.CGROUP_SOCK_ADDR)
        assert fn.attach_type == BPFAttachType.CGROUP_INET4_CONNECT


def test_load_func_errors_are_clear() -> None:
    with BPF(text=FUNCS, cflags=target_cflags()) as b:
        b.load_func("pass_all", BPF.XDP)
        with pytest.raises(BPFError, match="pass_all is already loaded as BPF.XDP.*cannot also be BPF.SOCKET_FILTER"):
            b.load_func("pass_all", BPF.SOCKET_FILTER)
        with pytest.raises(BPFError, match="no BPF function named 'nope'.*have: pass_all, keep_none, on_getppid"):
            b.load_func("nope", BPF.KPROBE)
        with pytest.raises(BPFError, match="999 is not a BPF program type"):
            b.load_func("keep_none", 999)
        with pytest.raises(BPFError, match="no network device named 'rbcc-nosuch0'"):
            b.load_func("keep_none", BPF.XDP, device="rbcc-nosuch0")
        with pytest.raises(BPFError, match=r"device lo cannot take programs offloaded"):
            b.load_func("keep_none", BPF.XDP, device="lo")
        with pytest.raises(BPFError, match="no BPF function named"):
            b.dump_func("nope")
    with pytest.raises(BPFError, match="cleaned up"):
        b.load_func("pass_all", BPF.XDP)


def test_attach_uses_the_program_load_func_made() -> None:
    with BPF(text=FUNCS, cflags=target_cflags()) as b:
        fn = b.load_func("on_getppid", BPF.TRACEPOINT)
        before = bpf_programs_open()
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name=fn.name)
        assert bpf_programs_open() == before  # no second copy of on_getppid
        for _ in range(4):
            os.getppid()
        assert b["counts"][3].value == 4


def test_load_funcs_loads_every_function() -> None:
    # helpers socket filters may call differ by kernel (6.1 has no bpf_get_current_pid_tgid there)
    packet_only = FUNCS[: FUNCS.index("int on_getppid")]
    with BPF(text=packet_only, cflags=target_cflags()) as b:
        fns = b.load_funcs(BPF.SOCKET_FILTER)
        assert [f.name for f in fns] == [b"pass_all", b"keep_none"]
        assert {fdinfo(f.fd)["prog_type"] for f in fns} == {str(BPF.SOCKET_FILTER)}
    with BPF(text=FUNCS, cflags=target_cflags()) as b:
        # bcc's default: kprobes (they load here; only attaching needs CONFIG_KPROBES)
        assert {fdinfo(f.fd)["prog_type"] for f in b.load_funcs()} == {str(BPF.KPROBE)}


def test_dump_func_is_the_bytecode() -> None:
    """bcc's own test of dump_func: `return 1` is `r0 = 1; exit`."""
    with BPF(text="int entry(void) { return 1; }") as b:
        assert b.dump_func("entry") == (
            b"\xb7\x00\x00\x00\x01\x00\x00\x00"  # mov r0, 1
            b"\x95\x00\x00\x00\x00\x00\x00\x00"  # exit
        )


def test_dump_func_has_the_map_fds_in_its_map_loads() -> None:
    with BPF(text=FUNCS, cflags=target_cflags()) as b:
        for dump in (b.dump_func("on_getppid"), b.dump_func(b.load_func("on_getppid", BPF.TRACEPOINT).name)):
            assert len(dump) % 8 == 0
            insns = [struct.unpack_from("<BBhi", dump, i) for i in range(0, len(dump), 8)]
            # ld_imm64 (0x18) with src_reg BPF_PSEUDO_MAP_FD (1): imm is the fd of `counts` (7 entries)
            map_fds = [imm for code, regs, _off, imm in insns if code == 0x18 and regs >> 4 == 1]
            assert map_fds, insns
            assert {fdinfo(fd)["max_entries"] for fd in map_fds} == {"7"}


# counts the probes open in each kind while they fire: ts[0] the time of the last getppid
PROBES = r"""
BPF_ARRAY(ts, u64, 1);

int on_tp(void *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int zero = 0;
    u64 now = bpf_ktime_get_ns();
    ts.update(&zero, &now);
    return 0;
}

int on_uprobe(struct pt_regs *ctx) {
    return 0;
}

int on_raw(struct bpf_raw_tracepoint_args *ctx) {
    return 0;
}
"""


def test_num_open_counts_each_kind() -> None:
    with BPF(text=PROBES, cflags=target_cflags()) as b:
        assert (b.num_open_kprobes(), b.num_open_uprobes(), b.num_open_tracepoints()) == (0, 0, 0)
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_tp")
        b.attach_tracepoint(tp_re="syscalls:sys_enter_get(uid|gid)$", fn_name="on_tp")
        assert b.num_open_tracepoints() == 3
        b.attach_uprobe(name="c", sym="getpid", fn_name="on_uprobe")
        b.attach_uretprobe(name="c", sym="getpid", fn_name="on_uprobe")
        b.attach_raw_tracepoint(tp="sched_switch", fn_name="on_raw")  # counted in none of them
        assert (b.num_open_kprobes(), b.num_open_uprobes(), b.num_open_tracepoints()) == (0, 2, 3)
        b.detach_tracepoint("syscalls:sys_enter_getuid")
        b.detach_uretprobe(name="c", sym="getpid")
        assert (b.num_open_uprobes(), b.num_open_tracepoints()) == (1, 2)
        b.cleanup()
        assert (b.num_open_kprobes(), b.num_open_uprobes(), b.num_open_tracepoints()) == (0, 0, 0)


@pytest.mark.without_kprobes
def test_num_open_kprobes_counts_no_failed_attach() -> None:
    with BPF(text=PROBES, cflags=target_cflags()) as b:
        with pytest.raises(KernelFeatureError):
            b.attach_kprobe(event="vfs_read", fn_name="on_uprobe")
        assert b.num_open_kprobes() == 0


def test_monotonic_time_is_the_clock_of_bpf_ktime_get_ns() -> None:
    with BPF(text=PROBES, cflags=target_cflags()) as b:
        b.attach_tracepoint(tp="syscalls:sys_enter_getppid", fn_name="on_tp")
        for _ in range(3):
            before = BPF.monotonic_time()
            os.getppid()
            after = BPF.monotonic_time()
            in_kernel = b["ts"][0].value
            assert isinstance(before, float)  # as bcc's
            assert before <= in_kernel <= after, (before, in_kernel, after)
            assert after - before < 1_000_000_000
            time.sleep(0.01)
    now = BPF.monotonic_time()
    assert abs(now - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) < 1_000_000_000


@pytest.mark.without_kprobes
def test_get_kprobe_functions_is_empty_without_kprobes() -> None:
    assert BPF.get_kprobe_functions(b"vfs_.*") == set()
    assert BPF.get_kprobe_functions(".*") == set()


@pytest.mark.without_kprobes
def test_kprobe_event_re_without_kprobes_names_the_missing_feature() -> None:
    # offcputime attaches by regex and then exits "0 functions traced" if nothing matched
    with BPF(text=PROBES, cflags=target_cflags()) as b:
        with pytest.raises(KernelFeatureError, match=r"kprobe to \^vfs_read\$.*no kprobes"):
            b.attach_kprobe(event_re="^vfs_read$", fn_name="on_uprobe")
        with pytest.raises(KernelFeatureError, match="kretprobe"):
            b.attach_kretprobe(event_re="^vfs_read$", fn_name="on_uprobe")
        assert b.num_open_kprobes() == 0


@pytest.mark.needs_kprobes
def test_get_kprobe_functions_matches_kernel_functions() -> None:
    found = BPF.get_kprobe_functions(b"vfs_re.*")
    assert isinstance(found, set)
    assert b"vfs_read" in found
    assert all(re.match(rb"vfs_re", fn) for fn in found)
    assert not any(fn.endswith(b".cold") for fn in BPF.get_kprobe_functions(rb".*\.cold$"))


def test_cleanup_unloads_loaded_functions() -> None:
    b = BPF(text=FUNCS, cflags=target_cflags())
    fn = b.load_func("pass_all", BPF.XDP)
    fd, prog_id = fn.fd, fdinfo(fn.fd)["prog_id"]
    b.cleanup()
    # the program's fd is closed with the object, as bcc's close() does
    try:
        assert fdinfo(fd).get("prog_id") != prog_id
    except FileNotFoundError:
        pass


def test_a_section_the_user_wrote_is_kept() -> None:
    text = r"""
SEC("sk_msg") int own(struct sk_msg_md *msg) { return 1; }
__attribute__((section("xdp"), used)) int spelled_out(struct xdp_md *ctx) { return 2; }
int by_context(struct bpf_sock_ops *ops) { return 1; }
BPF_ITER(task) { return 0; }
"""
    with BPF(text=text) as b:
        sections = dict(b._obj.programs())
    assert sections == {"own": "sk_msg", "spelled_out": "xdp", "by_context": "sockops", "bpf_iter__task": "iter/task"}
