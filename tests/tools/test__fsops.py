"""The file system latency tools' shared helpers: each file system's functions, ext4dist's program with
getattr where there is one, and loading: the C under --ebpf, one line without kprobes."""

from __future__ import annotations

import argparse

import pytest

from rbcc._tools import fsops
from rbcc.errors import KernelFeatureError


def test_every_file_system_has_the_four_operations() -> None:
    for fs, funcs in fsops.FS_FUNCS.items():
        assert {"read", "write", "open", "fsync"} <= set(funcs) <= set(fsops.OPS), fs
        assert all(fn.startswith(fs) for fn in funcs.values()), funcs
    assert "getattr" in fsops.FS_FUNCS["ext4"] and "getattr" not in fsops.FS_FUNCS["xfs"]


def test_dist_text_adds_getattr_only_where_asked_and_present() -> None:
    args = argparse.Namespace(pid=None, milliseconds=False)
    assert "trace_getattr_return" in fsops.dist_text(args, "nfs")
    assert "trace_getattr_return" not in fsops.dist_text(args, "nfs", getattr=False)
    assert "trace_getattr_return" not in fsops.dist_text(args, "btrfs")
    assert "delta_us <= 5000" in fsops.slower_text(None, 5)


def test_load_prints_the_c_under_ebpf(capsys: pytest.CaptureFixture[str]) -> None:
    assert fsops.load(argparse.Namespace(ebpf=True), "fsdist", "xfs", "int x;", "trace_entry", "alt") is None
    assert capsys.readouterr().out == "int x;\n"


@pytest.mark.without_kprobes
def test_load_without_kprobes_names_the_functions_and_the_alternative() -> None:
    text = fsops.dist_text(argparse.Namespace(pid=None, milliseconds=False), "xfs")
    with pytest.raises(KernelFeatureError, match="xfs_file_read_iter, xfs_file_write_iter.*; use fileslower"):
        fsops.load(argparse.Namespace(ebpf=False), "xfsdist", "xfs", text, "trace_entry", "use fileslower")
