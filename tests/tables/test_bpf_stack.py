"""Stacks on the real kernel: BPF_STACK_TRACE, get_stackid, walking and symbolizing with BPF.ksym; and
user stacks of a BPF_STACK_TRACE_BUILDID map, whose (build id, offset) frames BPF.sym resolves through
the files BPF.add_module registered, as bcc's do."""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from pathlib import Path

import pytest
from _bpfutil import build_c_program, target_cflags

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


# main calls through rbcc_bid_caller, whose frame the walk skips (a uprobe fires at rbcc_bid_target's
# first instruction, before it saves the frame pointer): the frames are the target, main, then libc's.
BUILD_ID_C = r"""
#include <stdio.h>
#include <unistd.h>

__attribute__((noinline)) void rbcc_bid_target(int i) { __asm__ volatile("" : : "r"(i)); }
__attribute__((noinline)) void rbcc_bid_caller(int i) { rbcc_bid_target(i); __asm__ volatile(""); }

int main(void) {
    puts("ready");
    fflush(stdout);
    for (int i = 0;; i++) {
        rbcc_bid_caller(i);
        usleep(1000);
    }
}
"""

BUILD_ID_STACKS = r"""
BPF_STACK_TRACE_BUILDID(stacks, 16);
BPF_ARRAY(ids, int, 1);
int on_target(struct pt_regs *ctx) {
    int zero = 0;
    int id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
    ids.update(&zero, &id);
    return 0;
}
"""


def _libc_of(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as maps:
        return next(line.split()[5] for line in maps if len(line.split()) == 6 and "/libc.so" in line)


def _has_debug_file(path: str) -> bool:
    """Whether /usr/lib/debug has ``path``'s separate debug file, by its build id."""
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    build_id = notes.split("Build ID:")[1].split()[0] if "Build ID:" in notes else ""
    return len(build_id) > 2 and Path(f"/usr/lib/debug/.build-id/{build_id[:2]}/{build_id[2:]}.debug").exists()


def test_build_id_frames_resolve_through_the_modules_added(tmp_path: Path) -> None:
    binary = build_c_program(tmp_path, "bid", BUILD_ID_C, "-O1", "-fno-omit-frame-pointer", "-Wl,--build-id")
    child = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        with BPF(text=BUILD_ID_STACKS) as b:
            b.attach_uprobe(name=str(binary), sym="rbcc_bid_target", fn_name="on_target")
            time.sleep(0.2)
            frames = list(b["stacks"].walk(b["ids"][0].value))
            assert frames and all(f.status == 1 for f in frames[:2]), [(f.status, f.offset) for f in frames]
            # before: a TypeError (BPF.sym took only addresses); bcc knows no file before add_module
            assert [b.sym(f, -1) for f in frames] == [b"[unknown]"] * len(frames)
            b.add_module(str(binary))
            assert b.sym(frames[0], -1, show_module=True, show_offset=True) == b"rbcc_bid_target+0x0 [bid]"
            assert b.sym(frames[1], -1) == b"main"
            # libc's frame, through its separate debug file (libc6-dbg) as for a process
            libc = _libc_of(child.pid)
            if not _has_debug_file(libc):
                pytest.skip("libc6-dbg is not installed: no name for libc's frame (make test-deps)")
            BPF.add_module(libc)
            assert b"__libc_start_call_main" in [b.sym(f, -1) for f in frames[2:]]
    finally:
        child.kill()
        child.wait()
