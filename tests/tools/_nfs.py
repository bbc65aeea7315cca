"""An NFS mount of the test's own, for nfsdist and nfsslower: the kernel's NFS server (nfsd) exports an
ext4 image of the test's to the kernel's NFS client over loopback, NFSv3 without locking (no lock
daemon, no NFSv4 grace period or id mapping).

The server needs its userspace (nfs-kernel-server: rpcbind, rpc.mountd, rpc.nfsd, exportfs), which
the test starts itself, with the export table in a tmpfs over /var/lib/nfs. That would disturb a
machine's own NFS service, so it runs only in the VM of `make test-kernels` (whose root file system
is read-only and runs nothing else); there the nfsd and NFS client modules are loaded from the guest's
kernel package (see _fsimage.load_module)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _ext4fs import ext4_dir
from _fsimage import load_module

SERVER_TOOLS = ("rpcbind", "rpc.mountd", "rpc.nfsd", "exportfs", "mount.nfs")


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"needs an NFS server: `{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()}")


@contextlib.contextmanager
def _daemon(*argv: str) -> Iterator[None]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        if proc.poll() is not None:
            pytest.skip(f"needs an NFS server: {argv[0]} exited with status {proc.returncode}")
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def nfs_dir() -> Iterator[Path]:
    """The root of an NFSv3 mount (over 127.0.0.1) of a fresh ext4 file system, unmounted and its
    server stopped afterwards; skips, saying what is missing, where it cannot be made."""
    if not os.environ.get("RBCC_IN_VM"):
        pytest.skip(
            "needs an NFS server: the test starts its own only in the VM of `make test-kernels`"
            " (here it would disturb the machine's own NFS service)"
        )
    missing = [t for t in SERVER_TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs an NFS server: no {', '.join(missing)} (nfs-kernel-server, nfs-common)")
    with tempfile.TemporaryDirectory(prefix="rbcc-nfs-") as tmp_name, ext4_dir() as export:
        tmp = Path(tmp_name)
        for module in ("nfsd", "nfsv3"):
            load_module(module, tmp, "needs an NFS server and client")
        with contextlib.ExitStack() as stack:
            _run("mount", "-t", "tmpfs", "rbcc-nfs", "/var/lib/nfs")
            stack.callback(subprocess.run, ["umount", "-l", "/var/lib/nfs"], capture_output=True)
            for d in ("rpc_pipefs", "v4recovery"):
                os.mkdir(f"/var/lib/nfs/{d}")
            for name in ("etab", "rmtab"):
                Path(f"/var/lib/nfs/{name}").touch()
            if not os.path.ismount("/proc/fs/nfsd"):
                _run("mount", "-t", "nfsd", "nfsd", "/proc/fs/nfsd")
                stack.callback(subprocess.run, ["umount", "/proc/fs/nfsd"], capture_output=True)
            os.makedirs("/run/rpcbind", exist_ok=True)
            stack.enter_context(_daemon("rpcbind", "-f", "-w"))
            _run("exportfs", "-o", "rw,sync,no_root_squash,insecure,no_subtree_check", f"127.0.0.1:{export}")
            stack.callback(subprocess.run, ["exportfs", "-ua"], capture_output=True)
            stack.enter_context(_daemon("rpc.mountd", "-F", "-N", "4"))
            _run("rpc.nfsd", "-N", "4", "2")
            stack.callback(subprocess.run, ["rpc.nfsd", "0"], capture_output=True)
            mnt = tmp / "mnt"
            mnt.mkdir()
            _run("mount", "-t", "nfs", "-o", "vers=3,proto=tcp,nolock", f"127.0.0.1:{export}", str(mnt))
            try:
                yield mnt
            finally:
                subprocess.run(["umount", str(mnt)], check=True)
