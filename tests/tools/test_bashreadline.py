"""bashreadline: a live run that types a command into a real interactive bash (on a pseudo-terminal,
so bash reads it with readline) and sees it; a library that is not there ends in one line."""

from __future__ import annotations

import os
import pty
import select
import time

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import bashreadline


def test_shared_option_defaults_as_bcc() -> None:
    p = bashreadline.build_parser()
    assert p.parse_args([]).shared is None
    assert p.parse_args(["-s"]).shared == "/lib/libreadline.so"
    assert p.parse_args(["-s", "/x/libreadline.so.8"]).shared == "/x/libreadline.so.8"


def _drain(fd: int, seconds: float) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:  # the shell has gone
                break
    return out


@pytest.mark.needs_root
@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="no /bin/bash to type into")
def test_sees_a_command_typed_into_an_interactive_bash() -> None:
    command = f"echo rbcc-typed-{os.getpid()}"
    shells: list[tuple[int, int]] = []

    def type_command() -> None:
        pid, fd = pty.fork()
        if pid == 0:
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], {"TERM": "dumb", "PATH": "/bin:/usr/bin"})
        shells.append((pid, fd))
        _drain(fd, 0.5)  # the prompt
        for ch in command:  # typed, one key at a time
            os.write(fd, ch.encode())
        os.write(fd, b"\r")
        _drain(fd, 0.3)

    seen = lambda out: command in out  # noqa: E731
    try:
        out, _ = run_interrupted(
            ["tool", "bashreadline"], lambda h: h.split() == ["TIME", "PID", "COMMAND"], type_command, seen
        )
    finally:
        for pid, fd in shells:
            os.write(fd, b"exit\r")
            _drain(fd, 0.3)
            os.close(fd)
            os.waitpid(pid, 0)
    rows = [line.split(None, 2) for line in out.splitlines() if line.endswith(command)]
    assert len(rows) == 1 and rows[0][1:] == [str(shells[0][0]), command], out
    time.strptime(rows[0][0], "%H:%M:%S")


@pytest.mark.needs_root
def test_a_missing_library_is_one_line() -> None:
    out = run_rbcc("tool", "bashreadline", "-s", "/nonexistent/libreadline.so")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("bashreadline: ") and out.stderr.count("\n") == 1, out.stderr
    assert "/nonexistent/libreadline.so" in out.stderr
