"""ttysnoop: the C for a device and buffer sizes, and live runs on a pty this test opens: what a child
writes to it (write() and writev()), and nothing written to another pty."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from _toolcheck import spawn_rbcc, text_of

from rbcc.tools import ttysnoop


def test_device_and_sizes() -> None:
    assert ttysnoop.device_path("2") == "/dev/pts/2" and ttysnoop.device_path("/dev/tty0") == "/dev/tty0"
    args = ttysnoop.build_parser().parse_args(["-s", "1024", "-c", "2", "3"])
    text = ttysnoop.bpf_text(args, 7, os.makedev(136, 3))
    assert f"inode->i_ino == 7 && inode->i_rdev == {(136 << 20) | 3}" in text
    assert "#define BUFSIZE 1024" in text and "char buf[2047 + 1];" in text and "i < 2;" in text
    assert "n & (511)" in text_of(ttysnoop, "2")  # 256 bytes: reads bounded by 511 in a 512-byte buffer


# Writes its arguments to its standard output, one write() each, then a writev() of two buffers.
CHILD = r"""
import os, sys
for text in sys.argv[1:]:
    os.write(1, text.encode())
os.writev(1, [b"vector-one ", b"vector-two\n"])
"""


@pytest.mark.needs_root
def test_shows_what_a_child_writes_to_the_watched_pty() -> None:
    master, slave = os.openpty()
    other_master, other_slave = os.openpty()
    out: list[str] = []
    tool = spawn_rbcc("tool", "ttysnoop", "-C", os.ttyname(slave))
    try:
        assert tool.stdout is not None and tool.stderr is not None
        reader = threading.Thread(target=lambda: out.extend(iter(lambda: tool.stdout.read(1), "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        # ttysnoop prints no header: write a mark until it shows (the probes are attached then; the
        # first compile takes long in an emulated VM)
        deadline = time.monotonic() + 120
        while "ready\n" not in "".join(out) and time.monotonic() < deadline and tool.poll() is None:
            os.write(slave, b"ready\n")
            os.read(master, 1024)
            time.sleep(0.3)
        assert "ready\n" in "".join(out), tool.stderr.read() if tool.poll() is not None else out
        subprocess.run([sys.executable, "-c", CHILD, "not this pty\n"], stdout=other_slave, check=True)
        subprocess.run([sys.executable, "-c", CHILD, "hello from ", "the test\n"], stdout=slave, check=True)
        while "vector-two" not in "".join(out) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        tool.send_signal(signal.SIGINT)
        tool.wait(timeout=30)
        for fd in (master, slave, other_master, other_slave):
            os.close(fd)
    reader.join(timeout=10)
    text = "".join(out).replace("ready\n", "")
    assert text == "hello from the test\nvector-one vector-two\n", text
    assert "Traceback" not in tool.stderr.read()  # type: ignore[union-attr]


def test_a_missing_device_is_refused() -> None:
    assert ttysnoop.main(["/dev/pts/999999"]) == 1
