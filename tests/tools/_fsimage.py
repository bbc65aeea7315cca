"""A btrfs or XFS file system of the test's own, loop-mounted, for the per-file-system tools (btrfsdist,
btrfsslower, xfsdist, xfsslower), as _ext4fs does for ext4; and the check of a slower tool's rows.

The VM of `make test-kernels` (where kprobes exist) has no disk, and its initramfs loads only loop and
ext4: on Debian's kernels btrfs and xfs are modules. The guest's kernel package is unpacked under
$RBCC_VM_DIR (tests/vm/run-in-vm.sh), so the file system's module is loaded from there, after the
modules it depends on (its ``depends=`` field, as modprobe would: the package has no modules.dep, which
depmod writes only on install). Where the kernel has the file system built in, nothing is loaded."""

from __future__ import annotations

import contextlib
import functools
import glob
import lzma
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import own_comm
from _ext4fs import PAGE

# mkfs's smallest image: XFS refuses a file system under 300 MB, btrfs one under 114 MB (with its
# default mixed-off profiles)
MKFS = {
    "btrfs": (["mkfs.btrfs", "-q", "-f"], 160, "btrfs-progs"),
    "xfs": (["mkfs.xfs", "-q", "-f"], 320, "xfsprogs"),
}


def _module_roots() -> list[str]:
    release = platform.release()
    roots = [f"/lib/modules/{release}"]
    vm_dir = os.environ.get("RBCC_VM_DIR", "/var/cache/rbcc-vm")
    return roots + glob.glob(os.path.join(vm_dir, "deb", "*", "lib", "modules", release))


@functools.cache
def _module_index(root: str) -> dict[str, str]:
    """Each module file under ``root``/kernel by its module name ('-' spelled '_'): one walk, since
    a glob per module over the VM's 9p root costs half a minute each."""
    index: dict[str, str] = {}
    for top, _, files in os.walk(os.path.join(root, "kernel")):
        for f in files:
            if ".ko" in f:
                index.setdefault(f[: f.index(".ko")].replace("-", "_"), os.path.join(top, f))
    return index


def _module_file(name: str) -> Path | None:
    for root in _module_roots():
        found = _module_index(root).get(name.replace("-", "_"))
        if found:
            return Path(found)
    return None


def _builtin(name: str) -> bool:
    for root in _module_roots():
        with contextlib.suppress(OSError):
            if f"/{name}.ko" in Path(root, "modules.builtin").read_text():
                return True
    return False


def load_module(name: str, tmp: Path, why: str) -> None:
    """Load kernel module ``name`` (after those it depends on) unless it is loaded or built in; skips
    the test, starting with ``why``, where it cannot."""
    sysname = name.replace("-", "_")
    if Path(f"/sys/module/{sysname}").exists() or _builtin(name):
        return
    path = _module_file(name)
    if path is None or shutil.which("insmod") is None:
        pytest.skip(f"{why}: module {name} is neither loaded nor found as a module file for {platform.release()}")
    data = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    for field in data.split(b"\0"):
        if field.startswith(b"depends="):
            for dep in filter(None, field[len(b"depends=") :].decode().split(",")):
                load_module(dep, tmp, why)
    plain = tmp / f"{sysname}.ko"
    plain.write_bytes(data)
    done = subprocess.run(["insmod", str(plain)], capture_output=True, text=True)
    if done.returncode != 0 and not Path(f"/sys/module/{sysname}").exists():
        pytest.skip(f"{why}: insmod {name} failed: {done.stderr.strip()}")


def _has_fs(fstype: str) -> bool:
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == fstype for line in f if line.strip())


@contextlib.contextmanager
def fs_dir(fstype: str) -> Iterator[Path]:
    """The root of a fresh ``fstype`` (btrfs or xfs) file system in a loop-mounted image (mounted
    noatime so reads write nothing), unmounted and removed afterwards; skips, saying what is missing,
    where it cannot be made."""
    mkfs, size_mb, package = MKFS[fstype]
    if shutil.which(mkfs[0]) is None:
        pytest.skip(f"needs {mkfs[0]} ({package}) to make a {fstype} file system")
    with tempfile.TemporaryDirectory(prefix=f"rbcc-{fstype}-") as tmp_name:
        tmp = Path(tmp_name)
        if not _has_fs(fstype):
            load_module(fstype, tmp, f"no {fstype} in this kernel")
        image, mnt = tmp / "image", tmp / "mnt"
        mnt.mkdir()
        with open(image, "wb") as f:
            f.truncate(size_mb << 20)
        subprocess.run([*mkfs, str(image)], check=True, capture_output=True)
        done = subprocess.run(
            ["mount", "-t", fstype, "-o", "loop,noatime", str(image), str(mnt)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"needs a loop device and {fstype} to mount a {fstype} image: {done.stderr.strip()}")
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)


def dist_counts(out: str) -> dict[str, int]:
    """The calls each histogram of a dist tool's output counts, by operation (bcc's ``operation = read``
    or libbpf-tools' quoted name)."""
    counts: dict[str, int] = {}
    op = None
    for line in out.splitlines():
        if m := re.match(r"operation = '?(\w+)'?$", line):
            op = m.group(1)
            counts.setdefault(op, 0)
        elif op and (m := re.match(r"\s*\d+ -> \d+\s*: (\d+)\s*\|", line)):
            counts[op] += int(m.group(1))
    return counts


def assert_slower_rows(out: str, name: str) -> None:
    """A bcc-style slower tool's output (btrfsslower, xfsslower, nfsslower at threshold 0, after
    ``file_work(dir / name, 3, 2)``): bcc's columns, every row the test's own, and exactly its calls: two
    opens, three page writes, an fsync, two page reads, each at its offset and naming its file."""
    lines = out.splitlines()
    assert lines[1].split() == ["TIME", "COMM", "PID", "T", "BYTES", "OFF_KB", "LAT(ms)", "FILENAME"], out
    rows = [line.split() for line in lines[2:]]
    comm = own_comm().decode()[:14]
    assert all(row[1:3] == [comm, str(os.getpid())] and float(row[6]) >= 0 for row in rows), out
    # (T, BYTES, OFF_KB, FILENAME)
    calls = sorted((row[3], int(row[4]), int(row[5]), row[7]) for row in rows)
    kb = PAGE // 1024
    writes = [("W", PAGE, i * kb, name) for i in range(3)]
    reads = [("R", PAGE, i * kb, name) for i in range(2)]
    assert calls == sorted([("O", 0, 0, name)] * 2 + writes + [("S", 0, 0, name)] + reads), out
