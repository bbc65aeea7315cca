"""bpflist: the table a child process shows when it holds a BPF program and two maps of its own through
rbcc, and (-v, -vv) a uprobe event this test makes in tracefs under bcc's naming, counted to its pid."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bpfutil import child_env
from _toolcheck import run_rbcc

from rbcc.tools import bpflist

CHILD_COMM = "bpflist-child"

# one program, two maps: what the child holds open while it waits for its stdin to close
CHILD = f"""
import sys
from rbcc import BPF
with open("/proc/self/comm", "w") as f:
    f.write("{CHILD_COMM}")
b = BPF(text='''
BPF_HASH(seen, u32, u64);
BPF_ARRAY(totals, u64, 4);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
    u32 k = 1;
    u64 v = 2;
    seen.update(&k, &v);
    totals.atomic_increment(0);
    return 0;
}}
''')
print("ready", flush=True)
sys.stdin.read()
"""


def test_probe_events_are_counted_to_the_pid_their_name_carries() -> None:
    counts: bpflist.Counts = {}
    bpflist.count_probes(
        "uprobe",
        [
            "p:uprobes/p__bin_bash_0x9a0_bcc_4321 /bin/bash:0x00000000000009a0\n",
            "r:uprobes/libbpf_77_readline_0x1f0 /bin/bash:0x1f0\n",
            "p:uprobes/p__bin_bash_0xa00_bcc_4321 /bin/bash:0xa00\n",
            "p:uprobes/someone_else /bin/bash:0xa00\n",
        ],
        counts,
    )
    assert counts == {(4321, "uprobe"): 2, (77, "uprobe"): 1}


def test_the_table_is_bccs() -> None:
    lines = bpflist.render({(30, "map"): 3, (7, "prog"): 1, (30, "prog"): 2}, {7: "a", 30: "bb"})
    assert lines == [
        "PID    COMM             TYPE  COUNT",
        "7      a                prog  1",
        "30     bb               map   3",
        "30     bb               prog  2",
    ]
    assert bpflist.render({}, {}) == ["PID    COMM             TYPE COUNT"]


@pytest.fixture
def bpf_child() -> Iterator[int]:
    """A child process that holds one BPF program and two maps of its own, loaded through rbcc."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env()
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


def rows_of(out: str, pid: int) -> dict[str, tuple[str, int]]:
    """TYPE -> (COMM, COUNT) of ``pid``'s rows in bpflist's table."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] == str(pid):
            rows[f[2]] = (f[1], int(f[3]))
    return rows


@pytest.mark.needs_root
def test_a_child_holding_a_program_and_two_maps_is_listed(bpf_child: int) -> None:
    done = run_rbcc("tool", "bpflist")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].split() == ["PID", "COMM", "TYPE", "COUNT"]
    assert rows_of(done.stdout, bpf_child) == {"prog": (CHILD_COMM, 1), "map": (CHILD_COMM, 2)}, done.stdout
    # nothing this test did not make is counted to it
    assert str(os.getpid()) not in [line.split()[0] for line in done.stdout.splitlines()[1:]]


def append_line(path: Path, line: str) -> None:
    """Append to a tracefs file as `echo >>` does (Python's append mode seeks, which tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@pytest.fixture
def bcc_named_uprobe() -> Iterator[tuple[int, str]]:
    """A uprobe event in tracefs named as bcc names its own, for this test's pid: (pid, event line)."""
    from rbcc import _core

    events = Path(_core.tracefs()) / "uprobe_events"
    if not events.exists():
        pytest.skip("no uprobe_events in tracefs (CONFIG_UPROBE_EVENTS unset)")
    libc = os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")
    offset = next((off for name, _, off in _core.elf_functions(libc) if name == "getpid"), None)
    if offset is None:
        pytest.skip(f"no getpid in {libc} to place the uprobe event on")
    name = f"rbcc_bpflist/p_getpid_bcc_{os.getpid()}"
    append_line(events, f"p:{name} {libc}:{offset:#x}")
    try:
        yield os.getpid(), name
    finally:
        append_line(events, f"-:{name}")


@pytest.mark.needs_root
def test_verbose_counts_and_shows_a_uprobe_event_by_its_pid(bcc_named_uprobe: tuple[int, str]) -> None:
    pid, name = bcc_named_uprobe
    plain = run_rbcc("tool", "bpflist")
    assert "uprobe" not in rows_of(plain.stdout, pid), plain.stdout
    counted = run_rbcc("tool", "bpflist", "-v")
    assert counted.returncode == 0, counted.stderr
    assert rows_of(counted.stdout, pid)["uprobe"][1] == 1, counted.stdout
    shown = run_rbcc("tool", "bpflist", "-vv")
    head, _, table = shown.stdout.partition("\n\nopen uprobes:\n")
    assert head.startswith("open kprobes:"), shown.stdout
    listing = table.split("\n\n")[0].splitlines()
    assert [line for line in listing if name in line] == [line for line in listing if f"_bcc_{pid} " in line]
    assert len([line for line in listing if name in line]) == 1, shown.stdout
    assert rows_of(shown.stdout, pid)["uprobe"][1] == 1, shown.stdout
