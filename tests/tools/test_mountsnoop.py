"""mountsnoop: flag and string rendering as bcc's, and a live run that sees the tmpfs this test mounts
and unmounts (and a mount that fails), in this process's mount namespace."""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile

import pytest
from _bpfutil import own_comm, run_interrupted

from rbcc.tools import mountsnoop

MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2


def test_flags_results_and_strings_as_bcc_renders_them() -> None:
    assert mountsnoop.mount_flags(MS_NOSUID | MS_NODEV) == "MS_NOSUID|MS_NODEV"
    assert mountsnoop.mount_flags(0) == "0x0"
    assert mountsnoop.mount_flags(0xC0ED0000 | 1) == "MS_MGC_VAL|MS_RDONLY"
    assert mountsnoop.mount_flags(1 | (1 << 28)) == "MS_RDONLY|0x10000000"
    assert mountsnoop.umount_flags(MNT_DETACH) == "MNT_DETACH"
    assert mountsnoop.result(0) == "0" and mountsnoop.result(-errno.ENODEV) == "-ENODEV"
    assert mountsnoop.result(-4000) == "-4000"
    assert mountsnoop.quoted(b'a"b\\c\n\x01') == '"a\\"b\\\\c\\n\\x01"'


def test_containers_filter_is_compiled_in() -> None:
    args = mountsnoop.build_parser().parse_args(["--mntnsmap", "/sys/fs/bpf/x"])
    assert "mount_ns_set" in mountsnoop.bpf_text(args)


@pytest.mark.needs_root
def test_sees_this_process_mount_and_umount() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    mnt_ns = os.stat("/proc/self/ns/mnt").st_ino
    with tempfile.TemporaryDirectory() as target:
        source = f"rbcc-{os.getpid()}"

        def workload() -> None:
            assert libc.mount(source.encode(), target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m") == 0
            try:
                assert os.path.ismount(target)
            finally:
                assert libc.umount2(target.encode(), MNT_DETACH) == 0
            assert libc.mount(source.encode(), target.encode(), b"rbcc-nofs", 0, None) == -1

        seen = lambda out: "rbcc-nofs" in out  # noqa: E731
        header = lambda h: h.split() == ["COMM", "PID", "TID", "PCOMM", "PPID", "MNT_NS", "CALL"]  # noqa: E731
        out, _ = run_interrupted(["tool", "mountsnoop", "-P"], header, workload, seen)
    rows = [line.split(None, 6) for line in out.splitlines() if target in line]
    who = [own_comm().decode(), str(os.getpid()), str(os.getpid())]
    parent = [open(f"/proc/{os.getppid()}/comm").read().strip()[:15], str(os.getppid()), str(mnt_ns)]
    assert [r[:6] for r in rows] == [who + parent] * 3, out
    assert [r[6] for r in rows] == [
        f'mount("{source}", "{target}", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m") = 0',
        f'umount("{target}", MNT_DETACH) = 0',
        f'mount("{source}", "{target}", "rbcc-nofs", 0x0, "") = -ENODEV',
    ]
