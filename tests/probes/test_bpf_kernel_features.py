"""kprobes, kretprobes and fentry/fexit (bcc's kfuncs), on kernels that have them.

This project's CI kernel has neither (no CONFIG_KPROBES; fentry refused): there these tests skip and
the ``without_*`` tests check the clear failure instead. ``make test-kernels`` runs this file in a VM
on Debian's stock kernel, where these attach and count for real.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from _bpfutil import fstype_of, kernel_config, target_cflags

import rbcc
from rbcc import BPF

pytestmark = pytest.mark.needs_root

NAPS = 5


def _nap() -> None:
    time.sleep(0.001)  # clock_nanosleep → do_nanosleep


def test_kprobe_detection_agrees_with_the_kernel_config() -> None:
    assert rbcc._core.has_kprobes() == (kernel_config().get("CONFIG_KPROBES") == "y")


KFUNC_COUNT = r"""
BPF_ARRAY(reads, u64, 2);
KFUNC_PROBE(vfs_read, struct file *file, char *buf, size_t count) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int i = 0;
    u64 n = count;
    reads.update(&i, &n);
    return 0;
}
KRETFUNC_PROBE(vfs_read, struct file *file, char *buf, size_t count, loff_t *pos, ssize_t ret) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int i = 1;
    u64 n = ret;
    reads.update(&i, &n);
    return 0;
}
"""


def test_the_fentry_path_taken_is_the_one_the_kernel_offers() -> None:
    # make test-kernels says what the guest kernel offers; CI says what its own offers. Either way the
    # probe decides, and the program then either attaches or fails naming the feature.
    expected = os.environ.get("RBCC_EXPECT_FENTRY")
    if expected is not None:
        assert BPF.support_kfunc() == (expected == "1")
    if BPF.support_kfunc():
        with BPF(text=KFUNC_COUNT, cflags=target_cflags()) as b:
            with open("/dev/zero", "rb", buffering=0) as f:
                assert len(f.read(4321)) == 4321
            assert [b["reads"][i].value for i in range(2)] == [4321, 4321]
    else:
        with pytest.raises(rbcc.KernelFeatureError, match="fentry"):
            BPF(text=KFUNC_COUNT, cflags=target_cflags())


@pytest.mark.needs_fentry
def test_kfunc_and_kretfunc_see_typed_arguments_and_the_return_value() -> None:
    with BPF(text=KFUNC_COUNT, cflags=target_cflags()) as b:
        with open("/dev/zero", "rb", buffering=0) as f:
            f.read(1000)
            assert [b["reads"][i].value for i in range(2)] == [1000, 1000]
            f.read(77)
            assert [b["reads"][i].value for i in range(2)] == [77, 77]
        b.detach_kfunc(fn_name="kfunc__vfs_read")
        with open("/dev/zero", "rb", buffering=0) as f:
            f.read(5)
        assert [b["reads"][i].value for i in range(2)] == [77, 5]


@pytest.mark.without_fentry
def test_kfunc_on_a_kernel_without_fentry_names_the_feature() -> None:
    assert BPF.support_kfunc() is False
    with pytest.raises(rbcc.KernelFeatureError) as info:
        BPF(text=KFUNC_COUNT, cflags=target_cflags())
    message = str(info.value)
    assert "vfs_read" in message and "fentry" in message and "tracepoint" in message


NANOSLEEPS = r"""
BPF_ARRAY(naps, u64, 1);
int kprobe__do_nanosleep(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    naps.atomic_increment(0);
    return 0;
}
"""


@pytest.mark.needs_kprobes
def test_kprobe_counts_our_nanosleeps() -> None:
    with BPF(text=NANOSLEEPS, cflags=target_cflags()) as b:
        assert b.num_open_kprobes() == 1
        for _ in range(NAPS):
            _nap()
        assert b["naps"][0].value == NAPS


RETURNS = r"""
#include <uapi/linux/ptrace.h>
BPF_HASH(ret, u32, s64);
int on_return(struct pt_regs *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    s64 rc = PT_REGS_RC(ctx);
    ret.update(&pid, &rc);
    return 0;
}
"""


@pytest.mark.needs_kprobes
def test_kretprobe_reads_the_return_value() -> None:
    with BPF(text=RETURNS, cflags=target_cflags()) as b:
        b.attach_kretprobe(event=b.get_syscall_fnname("getppid"), fn_name="on_return")
        ppid = os.getppid()
        assert b["ret"][os.getpid()].value == ppid


OPENS = r"""
#include <uapi/linux/ptrace.h>
struct open_t { u64 flags; char path[64]; };
BPF_HASH(opens, u32, struct open_t);
// bcc-style arguments on a kernel function: kernel pointers, read through with probe reads
int kprobe__do_filp_open(struct pt_regs *ctx, int dfd, struct filename *pathname, const struct open_flags *op) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    struct open_t o = {};
    o.flags = op->open_flag;
    bpf_probe_read_kernel_str(&o.path, sizeof(o.path), pathname->name);
    opens.update(&pid, &o);
    return 0;
}
// the syscall's own arguments, through the syscall wrapper's pt_regs
BPF_HASH(modes, u32, u64);
int syscall__openat(struct pt_regs *ctx, int dfd, const char __user *filename, int flags, int mode) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 m = mode;
    modes.update(&pid, &m);
    return 0;
}
"""


@pytest.mark.needs_kprobes
def test_kprobe_arguments_in_bcc_style(tmp_path: Path) -> None:
    path = tmp_path / "probe-me"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    with BPF(text=OPENS, cflags=target_cflags()) as b:
        b.attach_kprobe(event=b.get_syscall_fnname("openat"), fn_name="syscall__openat")
        os.close(os.open(path, flags, 0o640))
        opened = b["opens"][os.getpid()]
        mode = b["modes"][os.getpid()].value
    assert opened.path == str(path).encode()[:63]
    assert opened.flags & flags == flags  # the kernel adds flags of its own (O_LARGEFILE)
    assert mode == 0o640


@pytest.mark.needs_kprobes
def test_kprobe_event_re_attaches_every_match() -> None:
    text = NANOSLEEPS.replace("kprobe__do_nanosleep", "on_sleep")
    before = bpf_links()
    with BPF(text=text, cflags=target_cflags()) as b:
        b.attach_kprobe(event_re="^(do_nanosleep|hrtimer_nanosleep)$", fn_name="on_sleep")
        assert b.num_open_kprobes() == 2
        for _ in range(NAPS):
            _nap()
        assert b["naps"][0].value == 2 * NAPS
        b.detach_kprobe(event="do_nanosleep")
        assert b.num_open_kprobes() == 1
        # with one multi link for both, the other function's probe stays attached
        for _ in range(NAPS):
            _nap()
        assert b["naps"][0].value == 3 * NAPS
    assert "kprobe_multi" not in bpf_links() - before


def test_kprobe_multi_detection_agrees_with_the_kernel_config() -> None:
    # kprobe multi links came with fprobe (Linux 5.18), on which they are built. Debian builds 6.1
    # without it and 6.12 with it: make test-kernels sees both ways.
    config = kernel_config()
    assert rbcc._core.has_kprobe_multi() == (config.get("CONFIG_FPROBE") == "y" == config.get("CONFIG_BPF_EVENTS"))


def bpf_links() -> Counter[str]:
    """The BPF links this process holds, by type, as the kernel describes its fds in /proc/self/fdinfo."""
    kinds: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue  # the listing's own fd, closed by now
        kinds.update(line.split()[1] for line in info.splitlines() if line.startswith("link_type:"))
    return kinds


CALLS = r"""
BPF_HASH(calls, u64, u64);
BPF_HASH(returns, u64, u64);
int on_call(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u64 ip = bpf_get_func_ip(ctx);  // the function's address, for a kprobe and a kretprobe alike
    calls.atomic_increment(ip);
    return 0;
}
int on_return(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    u64 ip = bpf_get_func_ip(ctx);
    returns.atomic_increment(ip);
    return 0;
}
"""
CALLED = ("vfs_read", "vfs_write", "do_nanosleep")


@pytest.mark.needs_kprobes
def test_kprobe_event_re_uses_one_multi_link_where_the_kernel_has_them() -> None:
    pattern = f"^({'|'.join(CALLED)})$"
    before = bpf_links()
    with BPF(text=CALLS, cflags=target_cflags()) as b:
        b.attach_kprobe(event_re=pattern, fn_name="on_call")
        b.attach_kretprobe(event_re=pattern, fn_name="on_return")
        added = bpf_links() - before
        # bcc counts a probe per function, however they are attached
        assert b.num_open_kprobes() == 2 * len(CALLED)
        if rbcc._core.has_kprobe_multi():
            assert added == Counter(kprobe_multi=2)  # one for the kprobes, one for the kretprobes
        else:
            assert "kprobe_multi" not in added
        with open("/dev/zero", "rb", buffering=0) as zero, open("/dev/null", "wb", buffering=0) as null:
            for _ in range(NAPS):
                zero.read(10)
                null.write(b"x")
                _nap()
        for table in ("calls", "returns"):
            seen = {b.ksym(k.value).decode(): v.value for k, v in b[table].items()}
            assert {f: seen.get(f, 0) >= NAPS for f in CALLED} == dict.fromkeys(CALLED, True), (table, seen)
        b.detach_kprobe(event="vfs_read")
        assert b.num_open_kprobes() == 2 * len(CALLED) - 1
        if rbcc._core.has_kprobe_multi():
            assert bpf_links() - before == Counter(kprobe_multi=2)  # the others, through a new link
    assert "kprobe_multi" not in bpf_links() - before


OPENS_LSM = r"""
BPF_ARRAY(opens, u64, 1);
LSM_PROBE(file_open, struct file *file, int ret) {
    if ((bpf_get_current_pid_tgid() >> 32) == TARGET)
        opens.atomic_increment(0);
    return ret;  // allow what the other LSMs allow
}
"""


def test_the_lsm_path_taken_is_the_one_the_kernel_offers() -> None:
    expected = os.environ.get("RBCC_EXPECT_LSM")
    if expected is not None:
        assert BPF.support_lsm() == (expected == "1")
    if not BPF.support_lsm():
        with pytest.raises(rbcc.KernelFeatureError, match="LSM"):
            BPF(text=OPENS_LSM, cflags=target_cflags())


@pytest.mark.needs_lsm
def test_lsm_probe_sees_our_file_opens(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    with BPF(text=OPENS_LSM, cflags=target_cflags()) as b:
        for _ in range(3):
            with open(target) as f:
                assert f.read() == "x"
        assert b["opens"][0].value >= 3


@pytest.mark.without_lsm
def test_lsm_probe_compiles_and_names_the_missing_feature() -> None:
    with pytest.raises(rbcc.KernelFeatureError) as info:
        BPF(text=OPENS_LSM, cflags=target_cflags())
    assert "file_open" in str(info.value) and "LSM" in str(info.value)


# fmod_ret may replace the return of LSM hooks (security_*) and of functions open to error injection.
OPENS_DENIED = r"""
KMOD_RET(security_file_open, struct file *file, int ret) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    return -EACCES;
}
"""


@pytest.mark.needs_fentry
def test_kmod_ret_replaces_the_return_value_until_detached(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with BPF(text=OPENS_DENIED, cflags=target_cflags()) as b:
        with pytest.raises(PermissionError) as denied:
            target.open()
        assert denied.value.errno == 13
        b.detach_fmod_ret(fn_name="kmod_ret__security_file_open")
        assert target.read_text() == "x"
    assert target.read_text() == "x"


@pytest.mark.without_fentry
def test_kmod_ret_on_a_kernel_without_fentry_names_the_feature() -> None:
    with pytest.raises(rbcc.KernelFeatureError) as info:
        BPF(text=OPENS_DENIED, cflags=target_cflags())
    assert "fmod_ret" in str(info.value) and "security_file_open" in str(info.value)


# 9p is a module in Debian's kernel; the VM's root file system (this file too) is a 9p2000.L mount,
# so stat() there calls the module's getattr.
MODULE_KFUNC = r"""
BPF_ARRAY(stats, u64, 1);
MODULE_KFUNC_PROBE(9p, v9fs_vfs_getattr_dotl) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    stats.atomic_increment(0);
    return 0;
}
"""


@pytest.mark.needs_fentry
def test_module_kfunc_probe_sees_calls_into_a_module() -> None:
    if fstype_of(__file__) != "9p":
        pytest.skip("this checkout is not on a 9p mount (the module function probed); make test-kernels runs it")
    with BPF(text=MODULE_KFUNC, cflags=target_cflags()) as b:
        for _ in range(3):
            os.stat(__file__)
        assert b["stats"][0].value >= 3


@pytest.mark.without_fentry
def test_module_kfunc_probe_compiles_and_names_the_missing_feature() -> None:
    with pytest.raises(rbcc.KernelFeatureError) as info:
        BPF(text=MODULE_KFUNC, cflags=target_cflags())
    assert "9p:v9fs_vfs_getattr_dotl" in str(info.value)


def syscall_functions() -> set[str]:
    """The syscall functions kallsyms lists for getppid and getpriority (``__x64_sys_getppid``, ...)."""
    with open("/proc/kallsyms") as kallsyms:
        names = {line.split()[2] for line in kallsyms if line.split()[2].endswith(("_getppid", "_getpriority"))}
    return {n for n in names if n.startswith(("sys_", "__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_"))}


def test_sys_names_resolve_to_the_syscall_functions_kallsyms_has() -> None:
    have = syscall_functions()
    native = BPF.get_syscall_fnname("getppid").decode()
    assert native in have  # the prefix is this kernel's
    # bcc's `sys_NAME`, or another architecture's prefix, is this kernel's function, as bcc's
    # fix_syscall_fnname makes it; a kprobe on one attaches there (where kallsyms has it)
    for name in ["sys_getppid", "__x64_sys_getppid", "__arm64_sys_getppid", native]:
        assert BPF.fix_syscall_fnname(name) == native.encode()
        assert BPF._kprobe_event(name) == native
    assert BPF.fix_syscall_fnname("vfs_read") == b"vfs_read"
    assert BPF._kprobe_event("sys_rbcc_no_such_call") == "sys_rbcc_no_such_call"  # left for the attach to name


SYSCALL_KPROBES = r"""
BPF_ARRAY(seen, u64, 3);
// a kprobe on bcc's sys_ name: attached to this kernel's syscall function, reading the syscall's arguments
int kprobe__sys_getpriority(struct pt_regs *ctx, int which, int who) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int calls = 0, arg = 1;
    u64 w = who;
    seen.increment(calls);
    seen.update(&arg, &w);
    return 0;
}
int on_getppid(struct pt_regs *ctx) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    seen.increment(2);
    return 0;
}
"""


@pytest.mark.needs_kprobes
def test_kprobes_on_sys_names_attach_to_the_syscall_functions() -> None:
    with BPF(text=SYSCALL_KPROBES, cflags=target_cflags()) as b:
        b.attach_kprobe(event="sys_getppid", fn_name="on_getppid")
        assert b.num_open_kprobes() == 2
        try:
            os.getpriority(os.PRIO_PROCESS, 987654)
        except ProcessLookupError:
            pass  # no such process: the syscall ran all the same
        for _ in range(3):
            os.getppid()
        seen = b["seen"]
        assert [seen[i].value for i in range(3)] == [1, 987654, 3]
        b.detach_kprobe(event="sys_getppid")  # by the name it was attached with
        assert b.num_open_kprobes() == 1
        os.getppid()
        assert seen[2].value == 3


@pytest.mark.without_kprobes
def test_a_kprobe_on_a_sys_name_names_the_syscall_function_it_needed() -> None:
    native = BPF.get_syscall_fnname("getpriority").decode()
    with pytest.raises(rbcc.KernelFeatureError, match=f"cannot attach kprobe to {native}: this kernel has no kprobes"):
        BPF(text=SYSCALL_KPROBES, cflags=target_cflags())
    with BPF(text=SYSCALL_KPROBES.replace("kprobe__sys_getpriority", "on_priority"), cflags=target_cflags()) as b:
        native = BPF.get_syscall_fnname("getppid").decode()
        with pytest.raises(rbcc.KernelFeatureError, match=f"cannot attach kprobe to {native}:"):
            b.attach_kprobe(event="sys_getppid", fn_name="on_getppid")
