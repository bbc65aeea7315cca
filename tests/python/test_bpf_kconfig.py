"""The kernel's configuration as CONFIG_* defines in programs (what bcc took from autoconf.h)."""

from __future__ import annotations

import os

import pytest
from _bpfutil import kernel_config, target_cflags

from rbcc import BPF

pytestmark = pytest.mark.needs_root


CONFIG = r"""
BPF_ARRAY(cfg, u64, 4);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    int i = 0;
    u64 v = 0;
#ifdef CONFIG_BPF_SYSCALL
    v = 1;
#endif
    cfg.update(&i, &v);
    i = 1; v = 0;
#ifdef CONFIG_KPROBES
    v = 1;
#endif
    cfg.update(&i, &v);
    i = 2; v = CONFIG_HZ;
    cfg.update(&i, &v);
    return 0;
}
"""


def test_programs_see_the_running_kernels_config() -> None:
    config = kernel_config()
    with BPF(text=CONFIG, cflags=target_cflags()) as b:
        os.getppid()
        got = [b["cfg"][i].value for i in range(3)]
    assert got == [
        int(config.get("CONFIG_BPF_SYSCALL") == "y"),
        int(config.get("CONFIG_KPROBES") == "y"),
        int(config["CONFIG_HZ"]),
    ]
