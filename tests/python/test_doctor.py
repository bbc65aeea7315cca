"""rbcc doctor: each check over made-up machine facts, then the real command on this machine (as root here;
as a non-root user from an installed wheel in tests/python/test_wheel.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rbcc import _doctor as doctor

REPO = Path(__file__).resolve().parents[2]

SUPPORTED = [13, 14, 16, 17, 18, 19, 20, 21, 22]
ROOT_CAPS = (1 << doctor.CAP_BPF) | (1 << doctor.CAP_PERFMON) | (1 << doctor.CAP_SYS_ADMIN)


def test_capabilities_come_from_cap_eff() -> None:
    status = "Name:\tpython3\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n"
    assert doctor.cap_eff(status) == 0x1FFFFFFFFFF
    assert doctor.cap_eff("Name:\tx\n") == 0


def test_privileges_root_or_the_capabilities_tracing_needs() -> None:
    assert doctor.privileges(0, ROOT_CAPS).ok
    assert doctor.privileges(1000, (1 << doctor.CAP_BPF) | (1 << doctor.CAP_PERFMON)).ok
    assert doctor.privileges(1000, 1 << doctor.CAP_SYS_ADMIN).ok
    lacking = doctor.privileges(1000, 1 << doctor.CAP_BPF)
    assert lacking.ok is False and lacking.fixes is not None
    assert "CAP_PERFMON" in lacking.detail and "sudo" in lacking.fixes[0] and "sudo" in lacking.fixes[1]


def test_btf_missing_names_the_config_and_a_kernel_with_it(tmp_path: Path) -> None:
    check = doctor.btf(tmp_path / "vmlinux")
    assert check.ok is False and "CONFIG_DEBUG_INFO_BTF" in check.detail
    assert check.fixes is not None and "apt-get" in check.fixes[0] and "dnf" in check.fixes[1]


def test_tracefs_mounted_mountable_or_a_mount_command(tmp_path: Path) -> None:
    mounts = "proc /proc proc rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\n"
    assert doctor.tracefs(mounts, can_mount=False).detail == "mounted at /sys/kernel/tracing"
    dirs = (str(tmp_path),)
    assert doctor.tracefs("proc /proc proc rw 0 0\n", can_mount=True, dirs=dirs).ok
    missing = doctor.tracefs("proc /proc proc rw 0 0\n", can_mount=False, dirs=dirs)
    assert missing.ok is False and missing.fixes == (f"sudo mount -t tracefs nodev {tmp_path}",) * 2


def test_toolchain_found_refused_or_without_libclang() -> None:
    found = doctor.toolchain(("/usr/bin/clang", 19, "/usr/lib/llvm-19/lib/libclang-19.so.1", 19, None, SUPPORTED))
    assert [c.ok for c in found] == [True, True] and "LLVM 19" in found[1].detail
    refused = doctor.toolchain(("/a/clang (LLVM 14)", None, "/b/libclang.so (LLVM 19)", None, "they differ", SUPPORTED))
    assert len(refused) == 1 and refused[0].ok is False and refused[0].detail == "they differ"
    assert refused[0].fixes == ("sudo apt-get install clang-22 libclang1-22", "sudo dnf install clang clang-libs")
    none = doctor.toolchain((None, None, None, None, "cannot find clang", SUPPORTED))
    assert none[0].fixes is not None and none[0].fixes[0] == "sudo apt-get install clang libclang-dev"
    no_lib = doctor.toolchain(("/usr/bin/clang-16", 16, None, None, None, SUPPORTED))
    assert no_lib[1].ok is False and no_lib[1].fixes is not None and no_lib[1].fixes[0].endswith("libclang1-16")


def test_optional_features_need_root_to_probe_and_never_fail_the_run() -> None:
    features = doctor.kernel_features(False, lambda name: name == "kprobes", lambda enum, value: False)
    assert {c.name: c.ok for c in features}["fentry/fexit"] is None
    assert all(not c.needed for c in features)
    text = doctor.render([doctor.Check("BTF", True, "here"), *features])
    assert "needs root to check" in text and text.endswith("(exit status 0)")
    assert doctor.render([doctor.Check("BTF", False, "gone", fixes=("a", "b"))]).endswith("BTF (exit status 1)")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the report's probes load BPF programs")
def test_the_command_reports_this_machine_as_root() -> None:
    """This machine has all tracing needs (exit 0); both spellings run the same report."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    for argv in (["-m", "rbcc", "doctor"], ["-c", "import sys; from rbcc.cli import main; sys.exit(main(['doctor']))"]):
        out = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "ok       privileges" in out.stdout and "ok       libclang" in out.stdout
        assert out.stdout.rstrip().endswith("everything tracing needs is here (exit status 0)")
