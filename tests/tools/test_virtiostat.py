"""virtiostat: the C for its filters, its kprobe programs through the verifier, its one line without
kprobes; where kprobes exist (the VM, whose root file system is 9p over virtio), the bytes a read of a
file of known size brings in show on the 9p device's virtqueue."""

from __future__ import annotations

import mmap
import os
import re
import signal
import sys
import sysconfig

import pytest
from _toolcheck import assert_kprobes_load, refusal_line, spawn_rbcc, text_of

from rbcc.tools import virtiostat


def test_name_filters_are_in_the_c() -> None:
    plain = text_of(virtiostat)
    assert "wanted" not in plain and "DRIVER_FILTER" not in plain
    filtered = text_of(virtiostat, "-d", "virtio_blk", "-n", "virtio0")
    assert '{ char wanted[16] = "virtio_blk"; if (!names_match(wanted, fresh.driver)) return; }' in filtered
    assert '{ char wanted[16] = "virtio0"; if (!names_match(wanted, fresh.dev)) return; }' in filtered
    assert 'wanted[16] = "a\\"b"' in text_of(virtiostat, "-n", 'a"b')


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(virtiostat, "-d", "9pnet_virtio"), virtiostat.PROBES.values())


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "virtiostat", "1", "1")
    assert line.startswith("virtiostat: needs kprobes on virtqueue_add_sgs") and "CONFIG_KPROBES" in line


ROW = re.compile(r"^ *(\S+) +(\S+) +(\S+) +(\d+) +(\d+) +(\d+) +(\d+)$")


@pytest.mark.needs_kprobes
def test_a_read_over_virtio_9p_shows_its_bytes() -> None:
    # a file of tens of MB read with O_DIRECT over 9p (the VM's root): every byte one of its requests,
    # whatever the page cache holds, and far more than the rest of the VM reads meanwhile
    libdir, name = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    path = os.path.realpath(os.path.join(libdir, name)) if libdir and name else os.path.realpath(sys.executable)
    if not os.path.exists("/sys/bus/virtio/drivers/9pnet_virtio"):
        pytest.skip("no 9pnet_virtio driver: no virtio device this test can make busy")
    size = os.path.getsize(path)
    # one interval, ended by Ctrl-C after the reads: no clearing of the counts while they run
    tool = spawn_rbcc("tool", "virtiostat", "-d", "9pnet_virtio", "60", "1")
    try:
        assert tool.stdout is not None and tool.stderr is not None
        line = tool.stdout.readline()
        assert line.startswith("Tracing virtio devices"), line + tool.stderr.read()
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, 1 << 18)  # page-aligned, as O_DIRECT wants
        try:
            read = 0
            while n := os.readv(fd, [buf]):
                read += n
        finally:
            os.close(fd)
        assert read == size
    finally:
        tool.send_signal(signal.SIGINT)
        out, err = tool.communicate(timeout=60)
    assert "Traceback" not in err, err
    rows = [m.groups() for m in map(ROW.match, out.splitlines()) if m]
    assert rows and all(r[0] == "9pnet_virtio" for r in rows), out
    assert sum(int(r[5]) for r in rows) >= size, (size, out)
    assert sum(int(r[3]) for r in rows) > 0 and sum(int(r[4]) for r in rows) > 0, out
