"""trace_pipe: the kernel's shared text stream that bpf_trace_printk writes to."""

from __future__ import annotations

import os
import sys
from typing import Any, BinaryIO


class TracePipe:
    def __init__(self, tracefs: str) -> None:
        self.path = os.path.join(tracefs, "trace_pipe")
        self._file: BinaryIO | None = None

    def open(self, nonblocking: bool = False) -> BinaryIO:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across reads
        os.set_blocking(self._file.fileno(), not nonblocking)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _next_line(self, nonblocking: bool) -> bytes | None:
        """The next line without its newline; None when a non-blocking read finds nothing."""
        line = self.open(nonblocking).readline()
        return line.rstrip(b"\n") if line else None

    def readline(self, nonblocking: bool = False) -> bytes:
        return self._next_line(nonblocking) or b""

    def fields(self, nonblocking: bool = False) -> tuple[Any, ...]:
        """One bpf_trace_printk line as (task, pid, cpu, flags, timestamp, message), like bcc.

        A message that ends in a newline, as bcc's programs write them, is followed by an empty line
        (the kernel ends each event with one too): passed over, not taken for an empty pipe, which would
        hand a caller that sleeps on None one line per sleep."""
        while True:
            line = self._next_line(nonblocking)
            if line is None:
                if nonblocking:
                    return (None,) * 6
                continue
            parsed = parse_trace_line(line) if line else None
            if parsed is not None:
                return parsed

    def print_forever(self, fmt: str | None) -> None:
        while True:
            if fmt is None:
                line = self.readline()
                if line:
                    sys.stdout.write(line.decode(errors="replace") + "\n")
                    sys.stdout.flush()
                continue
            task, pid, cpu, flags, ts, msg = self.fields()
            fields = {
                "task": task.decode(errors="replace"),
                "pid": pid,
                "cpu": cpu,
                "flags": flags.decode(errors="replace"),
                "ts": ts,
                "msg": msg.decode(errors="replace"),
            }
            print(fmt.format(**fields), flush=True)


def parse_trace_line(line: bytes) -> tuple[bytes, int, int, bytes, float, bytes] | None:
    """Split `<task>-<pid> [cpu] flags ts: bpf_trace_printk: msg`; None for other lines (lost-event notes)."""
    if line.startswith(b"CPU:"):
        return None
    head, sep, rest = line.partition(b": ")
    if not sep:
        return None
    words = head.split()
    if len(words) < 3:
        return None
    ts_text, flags, cpu_text = words[-1], words[-2], words[-3]
    if not (cpu_text.startswith(b"[") and cpu_text.endswith(b"]")):
        # Older kernels print no flags column.
        ts_text, cpu_text, flags = words[-1], words[-2], b""
    task_pid = head[: head.rfind(cpu_text)].strip()
    task, _, pid_text = task_pid.rpartition(b"-")
    _, sep2, msg = rest.partition(b": ")
    if not sep2:
        msg = rest
    try:
        return (task, int(pid_text), int(cpu_text[1:-1]), flags, float(ts_text), msg)
    except ValueError:
        return None
