"""Questions scripts ask about the running kernel, answered from its BTF (BPF.kernel_struct_has_field...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbcc import BPF

pytestmark = pytest.mark.skipif(
    not Path("/sys/kernel/btf/vmlinux").exists(), reason="the kernel has no BTF (/sys/kernel/btf/vmlinux)"
)


def test_struct_fields() -> None:
    assert BPF.kernel_struct_has_field("task_struct", "__state")  # renamed from `state` in 5.14
    assert not BPF.kernel_struct_has_field(b"task_struct", b"state")
    assert not BPF.kernel_struct_has_field("task_struct", "no_such_field")
    assert not BPF.kernel_struct_has_field("no_such_struct", "pid")


def test_fields_of_anonymous_members_count() -> None:
    # sk_buff's `next` lives in an anonymous struct inside an anonymous union
    assert BPF.kernel_struct_has_field("sk_buff", "next")


def test_enum_values() -> None:
    assert BPF.kernel_enum_has_val("bpf_prog_type", "BPF_PROG_TYPE_KPROBE")
    assert not BPF.kernel_enum_has_val("bpf_prog_type", "BPF_PROG_TYPE_NOPE")
    assert not BPF.kernel_enum_has_val("no_such_enum", "X")


def test_user_functions_and_addresses() -> None:
    found = dict(BPF.get_user_functions_and_addresses("c", "^(malloc|free)$"))
    assert set(found) == {b"malloc", b"free"}
    assert all(addr > 0 for addr in found.values())
    assert BPF.find_library("c") is not None and BPF.find_library("c").startswith(b"/")
    assert BPF.find_library("no-such-library-rbcc") is None
    assert BPF.find_exe("sh") is not None
    assert BPF.find_exe("no-such-exe-rbcc") is None


def test_probe_limit_and_auto_includes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCC_PROBE_LIMIT", "5")
    assert BPF.get_probe_limit() == 5
    monkeypatch.delenv("BCC_PROBE_LIMIT")
    assert BPF.get_probe_limit() == 1000
    assert BPF.generate_auto_includes(["sk_buff", "bio"]) == ""  # vmlinux.h has every kernel type


def test_raw_tracepoints_in_modules_answer_from_kallsyms() -> None:
    with open("/proc/kallsyms") as f:
        exported = any(line.split()[2] == "bpf_trace_modules" for line in f if len(line.split()) >= 3)
    assert BPF.support_raw_tracepoint_in_module() == exported
