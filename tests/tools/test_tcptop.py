"""tcptop: the C it builds for its options, and live runs over loopback sessions of known size: both
ends show at least the bytes the test moved, in the right columns; -p and -6 leave out the others."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from _bpfutil import own_comm, run_interrupted
from _tcpconn import Session, in_child, listener, session, v6_listener
from _toolcheck import run_rbcc, text_of

from rbcc.tools import tcptop


def _text(*argv: str) -> str:
    return text_of(tcptop, *argv)


def test_filters_are_compiled_in_only_when_asked() -> None:
    plain = _text()
    assert "pid != " not in plain and "if (0 || 0 ||" in plain
    assert "pid != 181" in _text("-p", "181") and "family != AF_INET6" in _text("-6")
    assert "TRACEPOINT_PROBE(sock, sock_send_length)" in plain and "TRACEPOINT_PROBE(sock, sock_recv_length)" in plain


def test_bad_options_are_refused_by_the_parser() -> None:
    for argv in (["0"], ["1", "0"], ["-4", "-6"], ["-p", "x"]):
        with pytest.raises(SystemExit):
            tcptop.build_parser().parse_args(argv)


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcptop", "--ebpf", "-p", "4242")
    assert out.returncode == 0, out.stderr
    assert "pid != 4242" in out.stdout


def _started(line: str) -> bool:
    return line.startswith("Tracing... Output every")


def _rows(out: str) -> dict[tuple[str, str], list[str]]:
    """The last table's rows by (LADDR, RADDR)."""
    return {(f[2], f[3]): f for f in (line.split() for line in out.splitlines()) if len(f) == 6 and f[0].isdigit()}


@pytest.mark.needs_root
def test_both_ends_show_the_bytes_the_test_moved() -> None:
    done: list[Session] = []
    theirs = listener()

    def sessions() -> None:
        done.append(session(send=300_000, reply=100_000))
        done.append(in_child(send=50_000, server=theirs))  # another pid: -p leaves it out

    # one interval that outlasts the run: the table is printed once, at Ctrl-C
    argv = ["tool", "tcptop", "-C", "-S", "-p", str(os.getpid()), "60"]
    out, err = run_interrupted(argv, _started, sessions, lambda out: False, timeout=1)
    s, child = done
    rows = _rows(out)
    client = rows[(f"127.0.0.1:{s.client_port}", f"127.0.0.1:{s.server_port}")]
    server = rows[(f"127.0.0.1:{s.server_port}", f"127.0.0.1:{s.client_port}")]
    comm = own_comm().decode()
    # PID COMM LADDR RADDR RX_KB TX_KB; 300000 B is 292 KiB, 100000 B is 97 KiB
    assert client[:2] == [str(s.pid), comm] and server[:2] == [str(s.pid), comm], out + err
    assert int(client[4]) >= 97 and int(client[5]) >= 292, out
    assert int(server[4]) >= 292 and int(server[5]) >= 97, out
    child_port = f":{child.server_port}"
    assert not [k for k in rows if k[0].endswith(child_port) or k[1].endswith(child_port)], out
    assert "loadavg" not in out


@pytest.mark.needs_root
def test_ipv6_only_on_a_cleared_screen() -> None:
    done: list[Session] = []
    v6 = v6_listener()

    def sessions() -> None:
        done.append(session(socket.AF_INET, send=20_000))
        done.append(session(socket.AF_INET6, send=40_000, server=v6))

    out, err = run_interrupted(["tool", "tcptop", "-6", "60"], _started, sessions, lambda out: False, timeout=1)
    v4s, v6s = done
    assert "LADDR6" in out and "loadavg:" in out and "\033[H\033[2J" in out, out + err
    rows = _rows(out)
    assert rows[(f"::1:{v6s.client_port}", f"::1:{v6s.server_port}")][5] == "39", out  # 40000 B sent
    assert not [k for k in rows if k[0].endswith(f":{v4s.client_port}")], out


# tcptop as on a kernel before sock:sock_send_length (6.3), where bcc's kprobes are its source
WITHOUT_TRACEPOINTS = """import sys
from rbcc import BPF
from rbcc.tools import tcptop
BPF.tracepoint_exists = staticmethod(lambda category, event: False)
sys.exit(tcptop.main(sys.argv[1:]))
"""


@pytest.mark.needs_kprobes
def test_the_kprobe_source_counts_the_bytes_too(tmp_path: Path) -> None:
    script = tmp_path / "tcptop_kprobes.py"
    script.write_text(WITHOUT_TRACEPOINTS)
    done: list[Session] = []
    argv = ["run", str(script), "-C", "-S", "-p", str(os.getpid()), "60"]
    out, err = run_interrupted(
        argv, _started, lambda: done.append(session(send=300_000, reply=100_000)), lambda o: False, timeout=1
    )
    s = done[0]
    rows = _rows(out)
    client = rows[(f"127.0.0.1:{s.client_port}", f"127.0.0.1:{s.server_port}")]
    server = rows[(f"127.0.0.1:{s.server_port}", f"127.0.0.1:{s.client_port}")]
    assert int(client[4]) >= 97 and int(client[5]) >= 292, out + err
    assert int(server[4]) >= 292 and int(server[5]) >= 97, out
