"""Helpers shared by the end-to-end tests (real kernel, real programs)."""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest


def target_cflags(**defines: object) -> list[str]:
    """``-DTARGET=<our pid>`` plus ``-DNAME=value`` for each keyword, for BPF(cflags=...)."""
    return [f"-DTARGET={os.getpid()}"] + [f"-D{name}={value}" for name, value in defines.items()]


def poll_until(poll: Callable[[int], object], done: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Call ``poll(100)`` (a perf/ring buffer poll, in ms) until ``done()`` or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        poll(100)
    return True


def possible_cpus() -> int:
    """The number of possible CPUs (the length of a per-CPU map value), from sysfs."""
    with open("/sys/devices/system/cpu/possible") as f:
        spec = f.read().strip()
    count = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def own_comm() -> bytes:
    """This process's comm, as bpf_get_current_comm() sees it from the main thread."""
    with open("/proc/self/comm", "rb") as f:
        return f.read().rstrip(b"\n")


@contextlib.contextmanager
def pinned_to_one_cpu(cpu: int | None = None) -> Iterator[int]:
    """Run the block (this thread) on a single CPU, ``cpu`` or the lowest this process may use, so every
    event lands in the same per-CPU buffer, or on the CPU a filter keeps."""
    before = os.sched_getaffinity(0)
    cpu = min(before) if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def two_cpus() -> tuple[int, int]:
    """The two lowest CPUs this process may run on; skips the test where it may run on only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        pytest.skip("this process may run on one CPU only: a CPU filter needs a second CPU to leave out")
    return cpus[0], cpus[1]


def kernel_config() -> dict[str, str]:
    """The kernel's CONFIG_* values, from where rbcc reads them too ($RBCC_KERNEL_CONFIG, /proc/config.gz,
    /boot/config-<release>); skips the test when the kernel exposes none."""
    explicit = os.environ.get("RBCC_KERNEL_CONFIG")
    boot = Path(f"/boot/config-{os.uname().release}")
    if explicit:
        text = Path(explicit).read_text()
    elif Path("/proc/config.gz").exists():
        text = gzip.decompress(Path("/proc/config.gz").read_bytes()).decode()
    elif boot.exists():
        text = boot.read_text()
    else:
        pytest.skip("the kernel exposes no configuration (no /proc/config.gz, no /boot/config-*)")
    entries = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.startswith("CONFIG_"):
            entries[name] = value
    return entries


def build_c_program(workdir: Path, name: str, source: str, *flags: str) -> Path:
    """Compile ``source`` with gcc into ``workdir/name``; skips the test when gcc is missing."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip(f"gcc is not installed: cannot build the test program {name}")
    (workdir / f"{name}.c").write_text(source)
    binary = workdir / name
    subprocess.run([gcc, *flags, "-o", str(binary), str(workdir / f"{name}.c")], check=True)
    return binary


def child_env() -> dict[str, str]:
    """This environment with this interpreter's import path, so a child Python imports this rbcc."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _mounts() -> list[tuple[Path, str]]:
    """(mount point, file system type) of every mount this process sees, in mount order."""
    with open("/proc/self/mounts") as mounts:
        return [(Path(fields[1]), fields[2]) for fields in (line.split() for line in mounts) if len(fields) > 2]


def mount_point(fstype: str) -> Path | None:
    """Where the first file system of type ``fstype`` (``cgroup2``, ``bpf``, ...) is mounted, if anywhere."""
    return next((point for point, kind in _mounts() if kind == fstype), None)


def fstype_of(path: str | Path) -> str:
    """The type of the file system ``path`` lives on (its deepest mount, the last one mounted there)."""
    path = Path(os.path.realpath(path))
    under = [(len(point.parts), i, kind) for i, (point, kind) in enumerate(_mounts()) if point in (path, *path.parents)]
    return max(under)[2]


def cgroup2_root() -> Path:
    """The cgroup v2 mount; skips the test, saying so, where there is none."""
    root = mount_point("cgroup2")
    if root is None:
        pytest.skip("no cgroup2 hierarchy is mounted (cgroup ids and cgroup directories are cgroup v2's)")
    return root


def run_interrupted(
    rbcc_args: Sequence[str],
    header_check: Callable[[str], bool],
    workload: Callable[[], None],
    seen: Callable[[str], bool] = lambda out: True,
    timeout: float = 15,
) -> tuple[str, str]:
    """Run ``rbcc ARGS...`` (a tool, a script) as a user would; once its first line (the header) is out
    and passes ``header_check``, run ``workload``, wait until its output so far satisfies ``seen`` (at
    most ``timeout`` s), then Ctrl-C it. Returns (stdout, stderr); a traceback on stderr fails."""
    tool = subprocess.Popen(
        [sys.executable, "-m", "rbcc", *rbcc_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    lines: list[str] = []
    errors: list[str] = []
    try:
        assert tool.stdout is not None and tool.stderr is not None
        header = tool.stdout.readline()
        assert header_check(header), header + tool.stderr.read()
        readers = [
            threading.Thread(target=lambda: lines.extend(tool.stdout), daemon=True),  # type: ignore[arg-type]
            threading.Thread(target=lambda: errors.extend(tool.stderr), daemon=True),  # type: ignore[arg-type]
        ]
        for r in readers:
            r.start()
        # bcc's scripts print their header before they open their perf buffers: give them the moment
        time.sleep(0.5)
        workload()
        deadline = time.monotonic() + timeout
        time.sleep(0.5)
        while not seen("".join(lines)) and time.monotonic() < deadline and tool.poll() is None:
            time.sleep(0.1)
    finally:
        tool.send_signal(signal.SIGINT)
        tool.wait(timeout=30)
    for r in readers:
        r.join(timeout=10)
    out, err = "".join(lines), "".join(errors)
    assert "Traceback" not in err, err
    return header + out, err


_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}
_BPF_PROG_TEST_RUN = 10


def prog_test_run(prog_fd: int, packet: bytes) -> tuple[int, bytes]:
    """Run a loaded packet program (tc, XDP, ...) once on ``packet`` with BPF_PROG_TEST_RUN, as the
    kernel would on a frame it received: (what it returned, the packet as it left it)."""
    nr = _BPF_SYSCALL.get(platform.machine())
    if nr is None:
        pytest.skip(f"the bpf syscall number of {platform.machine()} is not known to the tests")
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 512)
    # union bpf_attr's test member: prog_fd, retval, data_size_in, data_size_out, data_in, data_out, repeat
    attr = ctypes.create_string_buffer(80)
    struct.pack_into(
        "=IIIIQQI",
        attr,
        0,
        prog_fd,
        0,
        len(packet),
        len(data_out),
        ctypes.addressof(data_in),
        ctypes.addressof(data_out),
        1,
    )
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(nr, _BPF_PROG_TEST_RUN, attr, ctypes.sizeof(attr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"BPF_PROG_TEST_RUN: {os.strerror(err)}")
    retval, _, size_out = struct.unpack_from("=III", attr, 4)
    return retval, data_out.raw[:size_out]
