"""What the exporter tests share: ``rbcc export`` run as a user would (a child process on a free port,
stopped with SIGTERM), scrapes, a worker process that makes known syscalls and block writes when told,
and the config of a program that counts one process's syscalls."""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _bpfutil import child_env

START_TIMEOUT = 240  # seconds: the first compile of a program on a fresh machine, with the CPUs shared


class ExportProcess:
    """``python -m rbcc export ARGV... --listen 127.0.0.1:0``, started; ``url`` is where it serves."""

    def __init__(self, *argv: str, listen: bool = True) -> None:
        args = [sys.executable, "-m", "rbcc", "export", *argv, *(["--listen", "127.0.0.1:0"] if listen else [])]
        self.proc = subprocess.Popen(
            args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=child_env()
        )
        self.stderr: list[str] = []
        self.url = ""
        ready = threading.Event()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line)
                found = re.search(r"at (http://\S+/metrics)", line)
                if found:
                    self.url = found[1]
                    ready.set()
            ready.set()  # it ended without serving

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(START_TIMEOUT) or not self.url:
            self.stop()
            raise AssertionError(f"rbcc export did not start: {''.join(self.stderr)}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def scrape(self, accept: str = "") -> str:
        request = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.read().decode())

    def stop(self) -> int:
        """SIGTERM, then its exit status (it must end within 30 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@contextlib.contextmanager
def exporting(*argv: str) -> Iterator[ExportProcess]:
    """An ExportProcess for the duration, stopped after; it must exit 0."""
    exporter = ExportProcess(*argv)
    try:
        yield exporter
    finally:
        code = exporter.stop()
    assert code == 0, "".join(exporter.stderr)


def syscalls_config(path: Path, target: int, *, extra: str = "") -> Path:
    """A config counting the syscalls of process ``target`` by pid, syscall and comm, at ``path``."""
    path.write_text(
        textwrap.dedent(
            f"""\
            programs:
              - name: syscalls
                cflags: [-DTARGET={target}]
                text: |
                  struct key_t {{ u32 tgid; u32 nr; char comm[16]; }};
                  BPF_HASH(calls, struct key_t, u64, 10240);
                  TRACEPOINT_PROBE(raw_syscalls, sys_exit) {{
                      u32 tgid = bpf_get_current_pid_tgid() >> 32;
                      if (tgid != TARGET)
                          return 0;
                      struct key_t k = {{.tgid = tgid, .nr = args->id}};
                      bpf_get_current_comm(&k.comm, sizeof(k.comm));
                      calls.increment(k);
                      return 0;
                  }}
                metrics:
                  counters:
                    - name: rbcc_test_syscalls_total
                      help: Syscalls of the test's worker
                      map: calls
                      labels:
                        - {{name: pid, field: tgid}}
                        - {{name: syscall, field: nr, decoder: syscall}}
                        - {{name: comm, field: comm, decoder: comm}}
            """
        )
        + extra
    )
    return path


# The worker: waits for "go", makes N getppid calls and M 4 KiB O_DIRECT writes to DEVICE (if any), says
# "done", and waits for its stdin to close.
_WORKER = r"""
import mmap, os, sys
sys.stdin.readline()
n, m, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(n):
    os.getppid()
if m:
    fd = os.open(device, os.O_WRONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)
    for i in range(m):
        os.pwrite(fd, buf, i * 4096)
    os.close(fd)
print("done", flush=True)
sys.stdin.read()
"""


class Worker:
    """A child process that makes ``getppid`` calls and block writes when told (its pid is known first,
    so a program can count its syscalls alone)."""

    def __init__(self, getppid: int, writes: int = 0, device: str = "") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", _WORKER, str(getppid), str(writes), device or "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def work(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


@contextlib.contextmanager
def worker(getppid: int, writes: int = 0, device: str = "") -> Iterator[Worker]:
    w = Worker(getppid, writes, device)
    try:
        yield w
    finally:
        w.close()


def loop_device(backing: Path, size: int = 32 << 20) -> str | None:
    """A loop device over a new file ``backing`` (its path), or None where losetup cannot make one."""
    with open(backing, "wb") as f:
        f.truncate(size)
    done = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def direct_writes(device: str, count: int) -> None:
    """``count`` 4 KiB O_DIRECT writes to ``device``, from this process."""
    fd = os.open(device, os.O_WRONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, 4096)
        for i in range(count):
            os.pwrite(fd, buf, i * 4096)
    finally:
        os.close(fd)


def wait_for(check: object, timeout: float, every: float = 0.5) -> bool:
    """Call ``check()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():  # type: ignore[operator]
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def run_export(*argv: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m rbcc export ARGV...`` run to its end (it must end by itself), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "rbcc", "export", *argv],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=timeout,
    )


def line_of(path: Path, text: str) -> tuple[int, int]:
    """(line, column) of the first ``text`` in the file at ``path``, both from 1."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number, line.index(text) + 1
    raise AssertionError(f"{text!r} is not in {path}")
