"""rbcc.libbcc: bcc's handle on its C library, answering what scripts ask about the build for rbcc."""

from __future__ import annotations

import ctypes
import os

import pytest

import rbcc
from rbcc import libbcc


def test_the_questions_scripts_ask_get_rbccs_answers() -> None:
    lib = libbcc.lib
    assert rbcc.lib is lib
    assert lib.bpf_module_rw_engine_enabled() == 1  # key_sprintf and friends work
    assert lib.bpf_has_kernel_btf() == int(os.path.exists("/sys/kernel/btf/vmlinux"))
    assert lib.bcc_free_memory() == 0


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"), reason="no kernel BTF")
def test_kernel_struct_has_field_takes_bytes_as_bcc_passes_them() -> None:
    assert libbcc.lib.kernel_struct_has_field(b"task_struct", b"pid") == 1
    assert libbcc.lib.kernel_struct_has_field("task_struct", "no_such_field") == 0


def test_a_function_rbcc_lacks_is_named_at_the_lookup() -> None:
    with pytest.raises(libbcc.LibbccFunctionMissing, match=r"libbcc\.bpf_attach_kprobe: rbcc has no libbcc\.so"):
        libbcc.lib.bpf_attach_kprobe  # noqa: B018 - the lookup is what fails
    assert not hasattr(libbcc.lib, "bcc_usdt_new_frompid")
    assert getattr(libbcc.lib, "perf_reader_poll", None) is None
    assert isinstance(libbcc.LibbccFunctionMissing("x"), AttributeError)


def test_the_structures_have_libbccs_layout() -> None:
    assert ctypes.sizeof(libbcc.bcc_stacktrace_build_id) == 32  # the kernel's struct bpf_stack_build_id
    assert ctypes.sizeof(libbcc.bcc_symbol) == 32
    assert [f[0] for f in libbcc.bcc_symbol_option._fields_] == [
        "use_debug_file",
        "check_debug_file_crc",
        "lazy_symbolize",
        "use_symbol_type",
    ]
