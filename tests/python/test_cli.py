"""`rbcc run SCRIPT`: existing bcc scripts, unmodified, with `bcc` resolving to rbcc."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _rbcc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rbcc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


ALIASES = """\
import sys
import bcc
from bcc import BPF, PerfType
from bcc.utils import printb, ArgString
from bcc.syscall import syscall_name
import bcc.table
import rbcc
printb(b"same BPF: %d" % (BPF is rbcc.BPF and bcc is rbcc))
printb(b"table module: %s" % bcc.table.__name__.encode())
printb(b"perf software type: %d" % PerfType.SOFTWARE)
print("argv:", sys.argv[1:], __name__)
"""


def test_run_resolves_bcc_to_rbcc(tmp_path: Path) -> None:
    script = tmp_path / "tool.py"
    script.write_text(ALIASES)
    out = _rbcc("run", str(script), "-x", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "same BPF: 1",
        "table module: rbcc.table",
        "perf software type: 1",
        "argv: ['-x', '1'] __main__",
    ]


def test_run_passes_on_the_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "fails.py"
    script.write_text("import sys\nsys.exit(3)\n")
    assert _rbcc("run", str(script)).returncode == 3


def test_a_bcc_module_rbcc_lacks_is_an_import_error(tmp_path: Path) -> None:
    script = tmp_path / "missing.py"
    script.write_text("import bcc.no_such_module\n")
    out = _rbcc("run", str(script))
    assert out.returncode == 1
    assert "ModuleNotFoundError" in out.stderr and "bcc.no_such_module" in out.stderr


@pytest.mark.without_kprobes
def test_a_script_needing_kprobes_stops_with_the_feature_named(tmp_path: Path) -> None:
    script = tmp_path / "kprobes.py"
    script.write_text('from bcc import BPF\nBPF(text="int kprobe__do_nanosleep(void *ctx) { return 0; }")\n')
    out = _rbcc("run", str(script))
    assert out.returncode == 1
    assert "KernelFeatureError" in out.stderr and "do_nanosleep" in out.stderr
    assert "Traceback" not in out.stderr


SYSCOUNT = "/usr/sbin/syscount-bpfcc"


@pytest.mark.needs_root
def test_debians_syscount_counts_our_syscalls() -> None:
    if not os.path.exists(SYSCOUNT):
        pytest.skip("bpfcc-tools is not installed (apt-get install bpfcc-tools): no Debian bcc scripts to run")
    # a workload of many getppid calls from one process, while syscount runs unmodified under rbcc
    tool = subprocess.Popen(
        [sys.executable, "-m", "rbcc", "run", SYSCOUNT],  # totals at Ctrl-C
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    calls = 100_000
    try:
        assert tool.stdout is not None
        header = tool.stdout.readline()
        assert "Tracing syscalls" in header, header + (tool.stderr.read() if tool.stderr else "")
        for _ in range(calls):
            os.getppid()
        time.sleep(0.5)
    finally:
        tool.send_signal(signal.SIGINT)
        out, err = tool.communicate(timeout=30)
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert "SYSCALL" in out and "COUNT" in out, out + err
    assert counts.get("getppid", 0) >= calls, out
    assert "Traceback" not in err


def test_rbcc_command_is_installed() -> None:
    exe = shutil.which("rbcc")
    if exe is None:
        pytest.skip("the rbcc console script is not on PATH (package not installed with pip)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout


TCPLIFE = "/usr/sbin/tcplife-bpfcc"


@pytest.mark.needs_root
def test_debians_tcplife_sees_a_local_connection() -> None:
    if not os.path.exists(TCPLIFE):
        pytest.skip("bpfcc-tools is not installed (apt-get install bpfcc-tools): no Debian bcc scripts to run")
    import socket

    # tcplife casts the tracepoint's skaddr to struct sock * and reads through it: kernel pointers
    tool = subprocess.Popen(
        [sys.executable, "-m", "rbcc", "run", TCPLIFE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert tool.stdout is not None
        header = tool.stdout.readline()
        assert header.split()[:3] == ["PID", "COMM", "LADDR"], header + (tool.stderr.read() if tool.stderr else "")
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port)) as client:
                conn, _ = server.accept()
                client.sendall(b"x" * 300_000)
                got = 0
                while got < 300_000:
                    got += len(conn.recv(65536))
                conn.close()
        time.sleep(1.0)
    finally:
        tool.send_signal(signal.SIGINT)
        out, err = tool.communicate(timeout=30)
    mine = [line.split() for line in out.splitlines() if line.split()[:1] == [str(os.getpid())]]
    # the client's side: our pid, to the server's port, 300 kB sent
    client_side = [f for f in mine if f[5] == str(port)]
    assert client_side, out + err
    assert client_side[0][2] == "127.0.0.1" and int(client_side[0][6]) == 292  # TX_KB: 300000 // 1024
    assert "Traceback" not in err
