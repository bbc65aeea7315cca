"""kvmexit: the C for its filters, the exit reasons' names from the tracepoint's format; live, a tiny
KVM guest of the test's own (two port writes, then hlt) counted by reason for its process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import kvmexit

GUEST = Path(__file__).with_name("_kvmguest.py")

FORMAT = (
    "name: kvm_exit\n"
    'print fmt: "vcpu %u reason %s%s%s rip 0x%lx", REC->vcpu_id, (REC->isa == 1) ? '
    '__print_symbolic(REC->exit_reason & 0xffff, { 0, "EXCEPTION_NMI" }, { 12, "HLT" }, { 30, "IO_INSTRUCTION" }) : '
    '__print_symbolic(REC->exit_reason, { 0x000, "read_cr0" }, { 0x040 + 14, "PF excp" }, { 0x078, "hlt" }, '
    '{ 0x07b, "io" }, { -1, "invalid" }), REC->guest_rip\n'
)


def test_exit_reason_names_come_from_the_format() -> None:
    assert kvmexit.exit_reason_names(FORMAT) == {
        1: {0: "EXCEPTION_NMI", 12: "HLT", 30: "IO_INSTRUCTION"},
        2: {0: "read_cr0", 0x4E: "PF excp", 0x78: "hlt", 0x7B: "io"},
    }


def test_thread_filters_are_bccs() -> None:
    assert "if (0)" in text_of(kvmexit)
    assert "if (tgid != 12)" in text_of(kvmexit, "-p", "12")
    assert "if (pid != 13)" in text_of(kvmexit, "-p", "12", "-t", "13")
    assert "if (pid != 1 && pid != 2)" in text_of(kvmexit, "-T", "1,2")


def vendor_module() -> str | None:
    return next((m for m in ("kvm_intel", "kvm_amd") if os.path.isdir(f"/sys/module/{m}")), None)


@pytest.mark.needs_root
def test_counts_a_guests_exits_by_reason() -> None:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("no usable /dev/kvm: no KVM guest to run")
    guest = subprocess.Popen(
        [sys.executable, str(GUEST), "--wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert guest.stdout is not None and guest.stdout.readline() == "ready\n"
        tool = spawn_rbcc("tool", "kvmexit", "-p", str(guest.pid), "3")
        assert tool.stdout is not None and tool.stderr is not None
        line = tool.stdout.readline()
        assert line == f"Display kvm exit reasons and statistics for PID {guest.pid} after sleeping 3 secs.\n", (
            line + tool.stderr.read()
        )
        assert guest.stdin is not None
        guest.stdin.write("go\n")
        guest.stdin.flush()
        assert guest.stdout.readline() == "b'4\\n'\n"  # the guest ran: 2 + 2 written to port 0x3f8
        out, err = tool.communicate(timeout=60)
    finally:
        guest.kill()
        guest.wait()
    assert tool.returncode == 0 and "Traceback" not in err, err
    lines = out.splitlines()
    assert lines[0].split() == ["KVM_EXIT_REASON", "COUNT"], out
    counts = {" ".join(f[:-1]): int(f[-1]) for f in (x.split() for x in lines[1:])}
    if vendor_module() is None:
        assert counts == {}, out
        pytest.skip("no kvm_intel or kvm_amd module: this KVM (kvm_pvm?) fires no kvm:kvm_exit")
    io, hlt = ("IO_INSTRUCTION", "HLT") if vendor_module() == "kvm_intel" else ("io", "hlt")
    assert counts.get(io, 0) >= 2 and counts.get(hlt, 0) >= 1, out
    assert list(counts.values()) == sorted(counts.values(), reverse=True), out
