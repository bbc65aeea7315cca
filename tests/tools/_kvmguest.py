"""A KVM guest in a few ioctls (real mode, one page): it writes 2 + 2 and a newline to port 0x3f8, then
halts; this process prints what the guest wrote. With --wait it prints "ready" and waits for a line on
stdin first (so a tool can start watching it)."""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os
import struct
import sys


def IO(nr):
    return (0xAE << 8) | nr


def IOW(nr, size):
    return (1 << 30) | (size << 16) | (0xAE << 8) | nr


def IOR(nr, size):
    return (2 << 30) | (size << 16) | (0xAE << 8) | nr


KVM_CREATE_VM = IO(0x01)
KVM_GET_VCPU_MMAP_SIZE = IO(0x04)
KVM_CREATE_VCPU = IO(0x41)
KVM_SET_USER_MEMORY_REGION = IOW(0x46, 32)
KVM_RUN = IO(0x80)
KVM_SET_REGS = IOW(0x82, 144)
KVM_GET_SREGS = IOR(0x83, 312)
KVM_SET_SREGS = IOW(0x84, 312)
KVM_EXIT_IO, KVM_EXIT_HLT = 2, 5

if "--wait" in sys.argv:
    print("ready", flush=True)
    sys.stdin.readline()
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
mem = mmap.mmap(-1, 0x1000, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
code = bytes([0xBA, 0xF8, 0x03, 0x00, 0xD8, 0x04, ord("0"), 0xEE, 0xB0, ord("\n"), 0xEE, 0xF4])
mem[: len(code)] = code
addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
region = struct.pack("=IIQQQ", 0, 0, 0x1000, 0x1000, addr)
fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)
run = mmap.mmap(vcpu, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
sregs = bytearray(312)
fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
struct.pack_into("=Q", sregs, 0, 0)  # cs.base
struct.pack_into("=H", sregs, 12, 0)  # cs.selector
fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
regs = [0] * 18
regs[0], regs[1], regs[16], regs[17] = 2, 2, 0x1000, 0x2  # rax, rbx, rip, rflags
fcntl.ioctl(vcpu, KVM_SET_REGS, struct.pack("=18Q", *regs))
out = b""
while True:
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    reason = struct.unpack_from("=I", run, 8)[0]
    if reason == KVM_EXIT_HLT:
        break
    if reason == KVM_EXIT_IO:
        direction, size_, port, count, offset = struct.unpack_from("=BBHIQ", run, 32)
        out += run[offset : offset + size_ * count]
        continue
    sys.exit(f"unexpected exit {reason}")
print(out, flush=True)
