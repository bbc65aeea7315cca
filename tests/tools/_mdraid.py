"""An md (software RAID) array of the test's own, without mdadm: RAID 0 over two loop devices, built
as `mdadm --build` does (no superblock) through md's ioctls, for mdflush's test.

The md driver is a module on Debian's kernels. In the VM of `make test-kernels` (tests/vm/run-in-vm.sh)
the guest's kernel package is unpacked under $RBCC_VM_DIR, so its md-mod and raid0 modules are loaded
from there; on a kernel without md (this project's own) the test skips, saying so."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import lzma
import os
import platform
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MD_MAJOR = 9


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (MD_MAJOR << 8) | nr


SET_ARRAY_INFO = _iow(0x23, 18 * 4)  # mdu_array_info_t: 18 ints
ADD_NEW_DISK = _iow(0x21, 5 * 4)  # mdu_disk_info_t: number, major, minor, raid_disk, state
RUN_ARRAY = _iow(0x30, 3 * 4)  # mdu_param_t
STOP_ARRAY = (MD_MAJOR << 8) | 0x32
DISK_ACTIVE_SYNC = (1 << 1) | (1 << 2)  # MD_DISK_ACTIVE, MD_DISK_SYNC


def _module_file(name: str) -> Path | None:
    release = platform.release()
    roots = [f"/lib/modules/{release}"]
    roots += glob.glob(
        os.path.join(os.environ.get("RBCC_VM_DIR", "/var/cache/rbcc-vm"), "deb", "*", "lib", "modules", release)
    )
    for root in roots:
        found = glob.glob(f"{root}/kernel/drivers/md/{name}.ko*")
        if found:
            return Path(found[0])
    return None


def _load(module: str, sysname: str, tmp: Path) -> None:
    if Path(f"/sys/module/{sysname}").exists():
        return
    path = _module_file(module)
    if path is None or shutil.which("insmod") is None:
        pytest.skip(f"no md driver: {module} is neither loaded nor found as a module file for {platform.release()}")
    data = lzma.decompress(path.read_bytes()) if path.suffix == ".xz" else path.read_bytes()
    plain = tmp / f"{module}.ko"
    plain.write_bytes(data)
    done = subprocess.run(["insmod", str(plain)], capture_output=True, text=True)
    if done.returncode != 0 and not Path(f"/sys/module/{sysname}").exists():
        pytest.skip(f"no md driver: insmod {module} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def md_array() -> Iterator[str]:
    """The path of a running RAID 0 array (``/dev/mdN``) over two 16 MiB loop devices, stopped and
    removed afterwards."""
    if shutil.which("losetup") is None:
        pytest.skip("needs losetup to make the md array's loop devices")
    with tempfile.TemporaryDirectory(prefix="rbcc-md-") as tmp_name:
        tmp = Path(tmp_name)
        _load("md-mod", "md_mod", tmp)
        _load("raid0", "raid0", tmp)
        loops = []
        try:
            for i in range(2):
                image = tmp / f"disk{i}"
                with open(image, "wb") as f:
                    f.truncate(16 << 20)
                done = subprocess.run(["losetup", "-f", "--show", str(image)], capture_output=True, text=True)
                if done.returncode != 0:
                    pytest.skip(f"no loop device for the md array: {done.stderr.strip()}")
                loops.append(done.stdout.strip())
            minor = 100 + os.getpid() % 100
            name = f"md{minor}"
            Path("/sys/module/md_mod/parameters/new_array").write_text(name)
            node = Path("/dev") / name
            for _ in range(50):
                if node.exists():
                    break
                time.sleep(0.05)
            else:
                os.mknod(node, 0o600 | 0o060000, os.makedev(MD_MAJOR, minor))
            fd = os.open(node, os.O_RDWR)
            try:
                # level 0, 2 disks, not persistent, 64 KiB chunks (mdadm --build's array info)
                info = [0] * 18
                info[4], info[6], info[7], info[8], info[9], info[17] = 0, 2, 2, minor, 1, 64 << 10
                fcntl.ioctl(fd, SET_ARRAY_INFO, struct.pack("18i", *info))
                for i, loop in enumerate(loops):
                    rdev = os.stat(loop).st_rdev
                    disk = struct.pack("5i", i, os.major(rdev), os.minor(rdev), i, DISK_ACTIVE_SYNC)
                    fcntl.ioctl(fd, ADD_NEW_DISK, disk)
                fcntl.ioctl(fd, RUN_ARRAY, struct.pack("3i", 0, 0, 0))
                yield str(node)
            finally:
                with contextlib.suppress(OSError):
                    fcntl.ioctl(fd, STOP_ARRAY)
                os.close(fd)
        finally:
            for loop in loops:
                subprocess.run(["losetup", "-d", loop], capture_output=True)
