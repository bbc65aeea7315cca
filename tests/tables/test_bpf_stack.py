"""Kernel stacks on the real kernel: BPF_STACK_TRACE, get_stackid, walking and symbolizing with BPF.ksym."""

from __future__ import annotations

import ctypes
import os

import pytest
from _bpfutil import target_cflags

from rbcc import BPF
from rbcc.table import StackTrace

pytestmark = pytest.mark.needs_root

STACKS = r"""
BPF_STACK_TRACE(stacks, 64);
BPF_HASH(ids, u32, int);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    int id = stacks.get_stackid(args, 0);
    ids.update(&pid, &id);
    return 0;
}
"""


def test_syscall_stack_symbolizes_to_kernel_functions() -> None:
    with BPF(text=STACKS, cflags=target_cflags()) as b:
        os.getppid()
        stack_id = b["ids"][os.getpid()].value
        assert stack_id >= 0, f"get_stackid failed with {stack_id}"
        stacks = b["stacks"]
        assert isinstance(stacks, StackTrace)
        addrs = list(stacks.walk(stack_id))
        names = list(stacks.walk(stack_id, resolve=BPF.ksym))
        with pytest.raises(KeyError):
            list(stacks.walk(stack_id + 1000))
    assert 0 < len(addrs) <= StackTrace.MAX_DEPTH
    assert all(a >= 0xFFFF_0000_0000_0000 for a in addrs), [hex(a) for a in addrs]  # kernel half
    assert names == [BPF.ksym(a) for a in addrs]
    known = [n for n in names if n != b"[unknown]"]
    assert known, names
    assert any(b"sys" in n or b"syscall" in n for n in known), names
    with open("/proc/kallsyms", "rb") as f:
        kallsyms = {line.split()[2] for line in f if len(line.split()) >= 3}
    assert all(n in kallsyms for n in known), names
    # offsets: "name+0x..." with the same name
    first = BPF.ksym(addrs[0], show_offset=True)
    assert first.startswith(names[0] + b"+0x")


def test_ksym_of_a_non_kernel_address_is_unknown() -> None:
    assert BPF.ksym(0x1234) == b"[unknown]"


def _kallsyms_text_symbol(name: bytes) -> int:
    with open("/proc/kallsyms", "rb") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == name and parts[1] in (b"T", b"t"):
                return int(parts[0], 16)
    pytest.skip(f"{name!r} is not in /proc/kallsyms")


def test_ksymname_finds_the_address_ksym_names() -> None:
    addr = _kallsyms_text_symbol(b"do_syscall_64")
    assert BPF.ksym(addr) == b"do_syscall_64"
    assert BPF.ksymname("do_syscall_64") == addr


def test_syscall_prefix_matches_the_kernel() -> None:
    arch_prefixes = ("__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_")
    expected = next((p for p in arch_prefixes if _kallsyms_has(p.encode() + b"getppid")), "sys_")
    assert expected != "sys_", "this kernel has no arch syscall wrappers"
    # bytes, as bcc returns them
    assert BPF.get_syscall_prefix() == expected.encode()
    assert BPF.get_syscall_fnname("getppid") == expected.encode() + b"getppid"
    assert BPF.get_syscall_fnname(b"getppid") == expected.encode() + b"getppid"


def _kallsyms_has(name: bytes) -> bool:
    with open("/proc/kallsyms", "rb") as f:
        return any(len(parts) >= 3 and parts[2] == name for parts in (line.split() for line in f))


def test_sym_names_the_module_of_an_address_without_a_symbol() -> None:
    # the first bytes of libc's mapping are its ELF header: no symbol covers them
    libc = ctypes.CDLL("libc.so.6")
    assert libc.strlen(b"x") == 1
    with open("/proc/self/maps") as f:
        start = next(int(line.split("-")[0], 16) for line in f if "/libc.so" in line)
    assert BPF.sym(start + 8, os.getpid()) == b"[unknown]"
    assert BPF.sym(start + 8, os.getpid(), show_module=True) == b"[unknown] [libc.so.6]"
