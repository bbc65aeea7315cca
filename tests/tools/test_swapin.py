"""swapin: its kprobe program through the verifier, its one line without kprobes; where kprobes exist
(the VM), a child whose pages this test pushes out to a swap file of its own (MADV_PAGEOUT) and that
then reads them back is counted, by its pid and comm, for about as many swap-ins as pages."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import mount_point, run_interrupted
from _ext4fs import ext4_dir
from _toolcheck import assert_kprobes_load, refusal_line, text_of

from rbcc.tools import swapin


def test_counts_by_process_and_comm() -> None:
    text = text_of(swapin)
    assert "struct key_t" in text and "bpf_get_current_comm(&key.comm" in text
    args = swapin.build_parser().parse_args(["-T", "5", "3"])
    assert (args.notime, args.interval, args.count) == (True, 5, 3)


@pytest.mark.needs_root
def test_kprobe_program_passes_the_verifier() -> None:
    assert_kprobes_load(text_of(swapin), ["count_swapin"])


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "swapin", "1", "1")
    assert line.startswith("swapin: needs kprobes on swap_read_folio or swap_readpage") and "CONFIG_KPROBES" in line


PAGES = 8192  # 32 MiB: well above what the interpreter itself swaps back in (a few MiB)
# On a first line from stdin (once in its cgroup), fills PAGES anonymous pages and pushes them out to
# swap (MADV_PAGEOUT, 21); on a second, reads each back.
SWAPPER = f"""
import mmap, sys
with open("/proc/self/comm", "w") as f:
    f.write("swapper")
print("started", flush=True)
sys.stdin.readline()
size = {PAGES} * mmap.PAGESIZE
m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, size, mmap.PAGESIZE):
    m[i] = (i // mmap.PAGESIZE) % 251 + 1
m.madvise(21)
print("ready", flush=True)
sys.stdin.readline()
assert all(m[i] == (i // mmap.PAGESIZE) % 251 + 1 for i in range(0, size, mmap.PAGESIZE))
"""


@contextlib.contextmanager
def own_cgroup(pid: int) -> Iterator[Path]:
    """A cgroup v2 group with the memory controller, holding process ``pid`` (cgroup2 mounted here if
    it is nowhere yet, as in the VM)."""
    root = mount_point("cgroup2")
    mounted = None
    if root is None:
        mounted = Path(tempfile.mkdtemp(prefix="rbcc-cg-"))
        if subprocess.run(["mount", "-t", "cgroup2", "none", str(mounted)]).returncode != 0:
            pytest.skip("no cgroup v2 to reclaim a process's memory with")
        root = mounted
    try:
        controllers = (root / "cgroup.controllers").read_text().split()
        if "memory" not in controllers:
            pytest.skip("no memory controller in cgroup v2 (memory.reclaim)")
        (root / "cgroup.subtree_control").write_text("+memory")
        group = root / f"rbcc_swapin_{os.getpid()}"
        group.mkdir()
        try:
            (group / "cgroup.procs").write_text(str(pid))
            yield group
        finally:
            if Path(f"/proc/{pid}").exists():
                (root / "cgroup.procs").write_text(str(pid))
            group.rmdir()
    finally:
        if mounted is not None:
            subprocess.run(["umount", str(mounted)], check=False)
            mounted.rmdir()


def reclaim(group: Path) -> None:
    """Reclaim what the group holds (memory.reclaim: Linux 5.19 and later)."""
    if not (group / "memory.reclaim").exists():
        pytest.skip("no memory.reclaim (Linux 5.19 and later) to free the swap cache with")
    try:
        (group / "memory.reclaim").write_text("1G")
    except OSError:  # EAGAIN: less than asked could be reclaimed
        pass


@pytest.mark.needs_kprobes
def test_counts_the_swap_ins_of_a_child() -> None:
    for tool in ("mkswap", "swapon", "swapoff"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (util-linux) to make a swap file")
    with ext4_dir(128) as root:
        swap = root / "swapfile"
        with open(swap, "wb") as f:
            f.write(b"\0" * (80 << 20))  # written, not sparse: swapon refuses holes
        swap.chmod(0o600)
        subprocess.run(["mkswap", str(swap)], check=True, capture_output=True)
        done = subprocess.run(["swapon", str(swap)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot swap to a file here: {done.stderr.strip()}")
        try:
            out, pid = swap_a_child_out_and_in()
        finally:
            subprocess.run(["swapoff", str(swap)], check=True)
    # each page read back in is one swap-in; the reclaim took some of the interpreter's own memory
    # too (fewer than 16 MiB of it), which comes back in as it runs
    assert PAGES * 9 // 10 <= swapins_of(out, pid) <= PAGES + 4096, out


def swapins_of(out: str, pid: int) -> int:
    return sum(int(f[2]) for f in (x.split() for x in out.splitlines()) if f[:2] == ["swapper", str(pid)])


def swap_a_child_out_and_in() -> tuple[str, int]:
    """swapin's output while a child (in a cgroup of its own) reads back PAGES pages it had swapped out."""
    child = subprocess.Popen([sys.executable, "-c", SWAPPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "started\n"
        with own_cgroup(child.pid) as cgroup:
            child.stdin.write("fill\n")
            child.stdin.flush()
            assert child.stdout.readline() == "ready\n"
            # once written out, the pages stay in the swap cache (a fault there reads nothing):
            # reclaiming the child's cgroup frees them, as memory pressure would
            time.sleep(1)
            reclaim(cgroup)
            time.sleep(1)
            reclaim(cgroup)

            def workload() -> None:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.wait(timeout=120) == 0

            out, _ = run_interrupted(
                ["tool", "swapin", "-T"],
                lambda h: h.startswith("Counting swap ins"),
                workload,
                lambda out: swapins_of(out, child.pid) >= PAGES,
                timeout=60,
            )
        return out, child.pid
    finally:
        child.kill()
        child.wait()
