"""Debian's bcc scripts (bpfcc-tools) run unmodified under `rbcc run`, each for a few seconds under a
workload the test makes, with assertions on what they print."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

import pytest
from _bpfutil import child_env, run_interrupted


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
    """Run a Debian bcc script under `rbcc run` with a workload, then Ctrl-C it (see run_interrupted)."""
    return run_interrupted(["run", script, *args], header_check, workload, seen)


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


def _lines_of(out: str, pid: int, column: int) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) > column and f[column] == str(pid)]


@pytest.mark.needs_root
def test_debians_exitsnoop_sees_an_exit_code_and_a_fatal_signal() -> None:
    children: list[int] = []

    def exits() -> None:
        code = subprocess.Popen(["sh", "-c", "exit 3"])
        killed = subprocess.Popen(["sleep", "30"])
        killed.kill()
        code.wait()
        killed.wait()
        children.extend([code.pid, killed.pid])

    def both(out: str) -> bool:
        return all(_lines_of(out, pid, 1) for pid in children)

    header = lambda h: h.split()[:3] == ["PCOMM", "PID", "PPID"]  # noqa: E731
    out, err = _run_tool(_debian_script("exitsnoop"), header, exits, seen=both)
    (code,) = _lines_of(out, children[0], 1)
    (killed,) = _lines_of(out, children[1], 1)
    # PCOMM PID PPID TID AGE(s) EXIT_CODE
    assert code[0] == "sh" and code[2] == str(os.getpid()) and code[5:] == ["code", "3"], out + err
    assert killed[0] == "sleep" and killed[5:] == ["signal", "9", "(KILL)"], out + err


@pytest.mark.needs_root
def test_debians_threadsnoop_sees_our_thread_start() -> None:
    def start_thread() -> None:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()

    # threadsnoop probes pthread_create in libc with a uprobe and names the thread's start function
    header = lambda h: h.split() == ["TIME(ms)", "PID", "COMM", "FUNC"]  # noqa: E731
    ours = lambda out: bool(_lines_of(out, os.getpid(), 1))  # noqa: E731
    out, err = _run_tool(_debian_script("threadsnoop"), header, start_thread, seen=ours)
    mine = _lines_of(out, os.getpid(), 1)
    assert mine, out + err
    # bcc prints the comm and symbol bytes with %s, as b'...'; CPython starts threads in pythread_wrapper
    assert mine[0][3] == "b'pythread_wrapper'", out


@pytest.mark.needs_root
def test_debians_gethostlatency_sees_a_lookup() -> None:
    resolve = lambda: socket.getaddrinfo("localhost", 80)  # noqa: E731
    header = lambda h: h.split()[:3] == ["TIME", "PID", "COMM"]  # noqa: E731
    ours = lambda out: bool(_lines_of(out, os.getpid(), 1))  # noqa: E731
    out, err = _run_tool(_debian_script("gethostlatency"), header, resolve, seen=ours)
    hosts = [f[-1] for f in _lines_of(out, os.getpid(), 1)]
    assert "localhost" in hosts, out + err
    assert all(float(f[3]) >= 0 for f in _lines_of(out, os.getpid(), 1))


@pytest.mark.needs_root
def test_debians_tcpstates_follows_a_connection_through_its_states() -> None:
    port = 0

    def connection() -> None:
        nonlocal port
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            port = server.getsockname()[1]
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = server.accept()
            client.close()
            conn.close()

    def transitions(out: str) -> list[tuple[str, str]]:
        # SKADDR C-PID C-COMM LADDR LPORT RADDR RPORT OLDSTATE -> NEWSTATE MS, for the client's socket
        rows = [line.split() for line in out.splitlines()]
        return [(f[7], f[9]) for f in rows if len(f) == 11 and f[6] == str(port)]

    header = lambda h: h.split()[:3] == ["SKADDR", "C-PID", "C-COMM"]  # noqa: E731
    closed = lambda out: ("FIN_WAIT2", "CLOSE") in transitions(out)  # noqa: E731
    out, err = _run_tool(_debian_script("tcpstates"), header, connection, seen=closed)
    steps = transitions(out)
    expected = [("SYN_SENT", "ESTABLISHED"), ("ESTABLISHED", "FIN_WAIT1"), ("FIN_WAIT2", "CLOSE")]
    assert all(step in steps for step in expected), out + err


# Each compiles and passes the verifier here, then stops at its first kprobe: execsnoop's syscall kprobe;
# the others once failed to compile under rbcc (a struct vmlinux.h also defines, offsetof, kernel
# headers' inline functions and constants).
KPROBE_SCRIPTS = {
    "execsnoop": "execve",
    "bindsnoop": "inet_bind",
    "dcsnoop": "d_lookup",
    "mountsnoop": "sys_mount",
    "tcprtt": "tcp_rcv_established",
    "filelife": "vfs_create",
    "virtiostat": "virtqueue_add_sgs",
}


@pytest.mark.without_kprobes
@pytest.mark.parametrize("name", sorted(KPROBE_SCRIPTS))
def test_debians_kprobe_scripts_stop_with_the_kprobe_named(name: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rbcc", "run", _debian_script(name)],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert out.returncode == 1
    assert "KernelFeatureError: cannot attach kprobe to" in out.stderr, out.stderr
    assert KPROBE_SCRIPTS[name] in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.needs_root
def test_debians_tplist_finds_tracepoints_under_debugfs() -> None:
    # tplist reads /sys/kernel/debug/tracing, where most machines have debugfs mounted at boot; on a
    # machine without it (as this project's), `rbcc run` mounts it
    script = _debian_script("tplist")
    if os.path.ismount("/sys/kernel/debug"):
        subprocess.run(["umount", "/sys/kernel/debug"], check=False)
    out = subprocess.run(
        [sys.executable, "-m", "rbcc", "run", script, "sched:sched_process_e*"],
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sched:sched_process_exec", "sched:sched_process_exit"], out.stdout
    assert os.path.isdir("/sys/kernel/debug/tracing")
