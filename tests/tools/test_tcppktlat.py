"""tcppktlat: the C it builds for its options, and live runs where the test's own thread reads data
300 ms after it arrived (and another read at once): the delayed one shows its latency, pid and tid."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcppktlat


def _text(*argv: str) -> str:
    return text_of(tcppktlat, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "sport != " not in plain and "pid != " not in plain and "delta_us <= 0" in plain
    assert "sport != 80" in _text("-l", "80") and "dport != 443" in _text("-r", "443")
    assert "pid != 181" in _text("-p", "181") and "tid != 182" in _text("-t", "182")
    assert "delta_us <= 1000" in _text("1000") and "family != AF_INET6" in _text("-6")


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["-p", "0"], ["0"], ["-4", "-6"], ["-l", "x"]):
        with pytest.raises(SystemExit):
            tcppktlat.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcppktlat", "--ebpf", "-l", "4242")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(tcp, tcp_rcv_space_adjust)" in out.stdout and "sport != 4242" in out.stdout


def _rows(out: str) -> list[list[str]]:
    return [f for f in (line.split() for line in out.splitlines()) if len(f) >= 8 and f[-1][0].isdigit()]


def _late_and_prompt_reads(server: socket.socket, tids: list[int], ports: list[int]) -> None:
    """Two connections to ``server``: one's data read at once, the other's 300 ms after it arrived,
    by a thread of this process (its tid goes to ``tids``); the clients' ports go to ``ports``."""
    prompt = socket.create_connection(server.getsockname())
    conn1, _ = server.accept()
    late = socket.create_connection(server.getsockname())
    conn2, _ = server.accept()

    def reader() -> None:
        tids.append(threading.get_native_id())
        late.sendall(b"l" * 1000)
        time.sleep(0.3)
        assert len(conn2.recv(5000)) == 1000

    prompt.sendall(b"p" * 1000)
    assert len(conn1.recv(5000)) == 1000
    t = threading.Thread(target=reader)
    t.start()
    t.join()
    ports.extend([prompt.getsockname()[1], late.getsockname()[1]])
    for s in (prompt, conn1, late, conn2):
        s.close()


@pytest.mark.needs_root
def test_a_delayed_read_shows_its_latency_pid_and_tid() -> None:
    server = listener()
    tids: list[int] = []
    ports: list[int] = []
    port = server.getsockname()[1]
    argv = ["tool", "tcppktlat", "-l", str(port), "100000"]  # 100 ms at least
    seen = lambda out: bool(_rows(out))  # noqa: E731
    out, err = run_interrupted(argv, lambda h: "LPORT" in h, lambda: _late_and_prompt_reads(server, tids, ports), seen)
    server.close()
    (row,) = _rows(out)  # the prompt read is under the minimum
    # PID TID COMM LADDR LPORT RADDR RPORT MS
    assert row[:7] == [
        str(os.getpid()),
        str(tids[0]),
        own_comm().decode(),
        "127.0.0.1",
        str(port),
        "127.0.0.1",
        str(ports[1]),
    ], out + err
    assert float(row[7]) >= 290, out


@pytest.mark.needs_root
def test_both_reads_without_a_minimum_with_time_and_remote_port() -> None:
    server = listener()
    tids: list[int] = []
    ports: list[int] = []
    port = server.getsockname()[1]
    argv = ["tool", "tcppktlat", "-T", "-w", "-l", str(port)]
    seen = lambda out: len(_rows(out)) >= 2  # noqa: E731
    out, err = run_interrupted(
        argv, lambda h: h.startswith("TIME(s)"), lambda: _late_and_prompt_reads(server, tids, ports), seen
    )
    server.close()
    rows = {f[7]: f for f in _rows(out)}  # by RPORT (the client's)
    prompt, late = rows[str(ports[0])], rows[str(ports[1])]
    assert len(prompt[0].split(":")) == 3 and prompt[1] == str(os.getpid()), out + err
    assert float(prompt[8]) < float(late[8]) and float(late[8]) >= 290, out
