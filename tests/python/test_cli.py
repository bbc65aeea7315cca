"""`rbcc run SCRIPT`: existing bcc scripts, unmodified, with `bcc` resolving to rbcc."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from _bpfutil import child_env


def _rbcc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rbcc", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
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


def _wrapper(tmp_path: Path, python_body: str) -> Path:
    """A shell script that runs a Python script by its #! line, as bcc's language tools do."""
    tool = tmp_path / "tool"
    tool.write_text(f"#!{sys.executable}\n{python_body}")
    wrapper = tmp_path / "wrapper"
    wrapper.write_text('#!/bin/sh\nlib=$(dirname "$0")\nexec "$lib/tool" -l python "$@"\n')
    for f in (tool, wrapper):
        f.chmod(0o755)
    return wrapper


def test_run_of_a_shell_wrapper_aliases_bcc_in_the_programs_it_starts(tmp_path: Path) -> None:
    wrapper = _wrapper(tmp_path, ALIASES + "sys.exit(4)\n")
    out = _rbcc("run", str(wrapper), "-x", "1")
    assert out.returncode == 4, out.stderr
    assert out.stdout.splitlines() == [
        "same BPF: 1",
        "table module: rbcc.table",
        "perf software type: 1",
        "argv: ['-l', 'python', '-x', '1'] __main__",
    ]


@pytest.mark.without_kprobes
def test_a_wrapped_script_needing_kprobes_stops_with_the_feature_named(tmp_path: Path) -> None:
    wrapper = _wrapper(tmp_path, 'from bcc import BPF\nBPF(text="int kprobe__do_nanosleep(void *ctx) { return 0; }")\n')
    out = _rbcc("run", str(wrapper))
    assert out.returncode == 1
    assert "KernelFeatureError" in out.stderr and "do_nanosleep" in out.stderr
    assert "Traceback" not in out.stderr


def _debian_script(name: str) -> str:
    path = f"/usr/sbin/{name}-bpfcc"
    if not os.path.exists(path):
        pytest.skip("bpfcc-tools is not installed (apt-get install bpfcc-tools): no Debian bcc scripts to run")
    return path


def _run_tool(
    script: str,
    header_check: Callable[[str], bool],
    workload: Callable[[], None],
    seen: Callable[[str], bool] = lambda out: True,
    args: Sequence[str] = (),
) -> tuple[str, str]:
    """Run a Debian bcc script under `rbcc run`; once its header is out, run `workload`, wait until its
    output so far satisfies `seen` (at most 15 s), then Ctrl-C it."""
    tool = subprocess.Popen(
        [sys.executable, "-m", "rbcc", "run", script, *args],
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
        workload()
        deadline = time.monotonic() + 15
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


@pytest.mark.needs_root
def test_debians_syscount_counts_our_syscalls() -> None:
    calls = 100_000

    def getppids() -> None:
        for _ in range(calls):
            os.getppid()

    # without an interval, syscount prints its totals at Ctrl-C
    out, err = _run_tool(_debian_script("syscount"), lambda h: "Tracing syscalls" in h, getppids)
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert "SYSCALL" in out and "COUNT" in out, out + err
    assert counts.get("getppid", 0) >= calls, out


def test_rbcc_command_is_installed() -> None:
    exe = shutil.which("rbcc")
    if exe is None:
        pytest.skip("the rbcc console script is not on PATH (package not installed with pip)")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "run" in out.stdout


@pytest.mark.needs_root
def test_debians_tcplife_sees_a_local_connection() -> None:
    port = 0

    def connection() -> None:
        nonlocal port
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

    # tcplife casts the tracepoint's skaddr to struct sock * and reads through it: kernel pointers
    def ours(out: str) -> bool:
        return any(line.split()[:1] == [str(os.getpid())] and f" {port} " in line for line in out.splitlines())

    header = lambda h: h.split()[:3] == ["PID", "COMM", "LADDR"]  # noqa: E731
    out, err = _run_tool(_debian_script("tcplife"), header, connection, seen=ours)
    mine = [line.split() for line in out.splitlines() if line.split()[:1] == [str(os.getpid())]]
    # the client's side: our pid, to the server's port, 300 kB sent
    client_side = [f for f in mine if f[5] == str(port)]
    assert client_side, out + err
    assert client_side[0][2] == "127.0.0.1" and int(client_side[0][6]) == 292  # TX_KB: 300000 // 1024


# A Python that calls ping() in a loop. CPython 3.11 fires its function__entry probe only while a
# profile function is set (its return probe fires always), so the child sets one.
PINGER = """
import sys, time
sys.setprofile(lambda *a: None)
def ping():
    return 1
print("ready", flush=True)
while True:
    for _ in range(100):
        ping()
    time.sleep(0.01)
"""


@pytest.mark.needs_root
def test_debians_pythoncalls_wrapper_counts_a_python_function() -> None:
    script = _debian_script("pythoncalls")
    python = "/usr/bin/python3"  # Debian's, built with USDT probes
    if shutil.which("readelf") is None or not os.path.exists(python):
        pytest.skip(f"readelf (binutils) or {python} is missing: cannot find a Python with USDT probes")
    notes = subprocess.run(["readelf", "-n", os.path.realpath(python)], capture_output=True, text=True)
    if "function__entry" not in notes.stdout:
        pytest.skip(f"{python} has no USDT function__entry probe (not Debian's build)")
    pinger = subprocess.Popen([python, "-c", PINGER], stdout=subprocess.PIPE, text=True)
    try:
        assert pinger.stdout is not None and pinger.stdout.readline() == "ready\n"

        def counted(out: str) -> bool:
            return any("ping" in line for line in out.splitlines())

        # pythoncalls is a shell wrapper around ucalls: `rbcc run` runs it with bcc aliased in ucalls.
        # With an interval of 1 s it prints the counts each second.
        header = lambda h: h.startswith(f"Tracing calls in process {pinger.pid}")  # noqa: E731
        out, err = _run_tool(script, header, lambda: None, seen=counted, args=[str(pinger.pid), "1"])
    finally:
        pinger.kill()
        pinger.wait()
    counts = [int(line.split()[-1]) for line in out.splitlines() if line.split()[:1] == ["<string>.ping"]]
    assert counts and max(counts) >= 100, out + err
