"""A kernel without /sys/kernel/btf/vmlinux (older distribution kernels): rbcc works from a BTF file
named by RBCC_KERNEL_BTF, as BTFHub publishes them. The kernel's own BTF is hidden in a mount namespace
of the test's own (a tmpfs over /sys/kernel/btf), so the program runs as it would on such a kernel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bpfutil import child_env

pytestmark = pytest.mark.needs_root

# a CO-RE read of a kernel struct: the relocation must be resolved against the file's BTF
PROGRAM = r'''
import os
from rbcc import BPF
b = BPF(text=r"""
BPF_HASH(seen, u32, u32);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u32 tgid = t->tgid;
    seen.update(&pid, &tgid);
    return 0;
}
""")
os.getppid()
print(os.path.exists("/sys/kernel/btf/vmlinux"), b["seen"][b["seen"].Key(os.getpid())].value == os.getpid())
'''


def _without_kernel_btf(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing: cannot hide the kernel's BTF")
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    hide = f"mount -t tmpfs none /sys/kernel/btf && exec {sys.executable} {script}"
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", hide],
        env={**child_env(), "RBCC_CACHE_DIR": str(tmp_path / "cache"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_program_compiles_and_runs_from_a_btf_file(tmp_path: Path) -> None:
    btf = tmp_path / "this-kernel.btf"
    shutil.copyfile("/sys/kernel/btf/vmlinux", btf)
    out = _without_kernel_btf(tmp_path, RBCC_KERNEL_BTF=str(btf))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]  # no BTF of the kernel's own; the read was right


def test_without_either_the_error_names_both_fixes(tmp_path: Path) -> None:
    out = _without_kernel_btf(tmp_path)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("rbcc.errors.KernelFeatureError: this kernel has no BTF at /sys/kernel/btf/vmlinux")
    assert "CONFIG_DEBUG_INFO_BTF=y" in last and "RBCC_KERNEL_BTF" in last
