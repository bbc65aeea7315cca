"""vfscount: the system calls it counts for each VFS function, and a live run in which the mkdirs,
renames and rmdirs the test makes are counted under vfs_mkdir, vfs_rename and vfs_rmdir."""

from __future__ import annotations

import os
import re
import tempfile

import pytest
from _bpfutil import run_interrupted
from _toolcheck import text_of

from rbcc.tools import vfscount

MKDIRS = 41


def test_each_syscall_counts_in_its_functions_slot() -> None:
    text = text_of(vfscount)
    slot = vfscount.FUNCTIONS.index("vfs_read")
    for call in ("read", "pread64"):
        probe = text.split(f"int count_{call}(", 1)[1].split("}", 1)[0]
        assert f"counts.atomic_increment({slot});" in probe
    # unlinkat is split into unlink and rmdir by its flag
    enter = text.split("int count_unlinkat(", 1)[1].split("\n}", 1)[0]
    rmdir, unlink = vfscount.FUNCTIONS.index("vfs_rmdir"), vfscount.FUNCTIONS.index("vfs_unlink")
    assert f"*dir ? {rmdir} : {unlink}" in enter
    assert f"BPF_ARRAY(counts, u64, {len(vfscount.FUNCTIONS)});" in text


def _counts(out: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^[0-9a-f]+\s+(vfs_\w+)\s+(\d+)$", out, re.M)}


@pytest.mark.needs_root
def test_counts_the_tests_mkdirs_renames_and_rmdirs() -> None:
    with tempfile.TemporaryDirectory() as tmp:

        def work() -> None:
            dir_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for i in range(MKDIRS):
                    os.mkdir(os.path.join(tmp, f"d{i}"))
                    os.rename(os.path.join(tmp, f"d{i}"), os.path.join(tmp, f"e{i}"))
                    # through a directory descriptor: unlinkat(AT_REMOVEDIR), which must count as rmdir
                    os.rmdir(f"e{i}", dir_fd=dir_fd)
            finally:
                os.close(dir_fd)

        out, _ = run_interrupted(
            ["tool", "vfscount"], lambda h: h.startswith("Tracing... Ctrl-C to end."), work, timeout=2
        )
    counts = _counts(out)
    assert counts.get("vfs_mkdir", 0) >= MKDIRS, out
    assert counts.get("vfs_rename", 0) >= MKDIRS, out
    assert counts.get("vfs_rmdir", 0) >= MKDIRS, out
    # sorted by count, least first, as bcc prints them
    values = list(counts.values())
    assert values == sorted(values), out
    assert re.search(r"^ADDR\s+FUNC\s+COUNT$", out, re.M), out
