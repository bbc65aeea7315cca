"""tcpretrans: the C it builds for its options, the kprobe -l needs (verifier-loaded; the one-line stop
where there are no kprobes), and live runs that see what the test makes the kernel resend: a SYN to a
listener whose accept queue is full is dropped, and the client resends it a second later; data whose
ACKs the sender's socket filter drops is probed for (-l, where kprobes exist) and resent."""

from __future__ import annotations

import contextlib
import ctypes
import socket
import struct
import time
from dataclasses import dataclass

import pytest
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, text_of

from rbcc import BPF
from rbcc.tools import tcpretrans

# linux/tcp.h: repair mode exposes a socket's sequence numbers
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_SEND_QUEUE = 19, 20, 21, 2
# asm-generic/socket.h; a classic BPF program of one instruction, BPF_RET|BPF_K 0: drop every packet
SO_ATTACH_FILTER, SO_DETACH_FILTER = 26, 27
DROP_ALL = struct.pack("HBBI", 0x06, 0, 0, 0)


def _text(*argv: str) -> str:
    return text_of(tcpretrans, *argv)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "trace_tlp" not in plain and "family != " not in plain and "#if 0" in plain
    assert "int trace_tlp(struct pt_regs *ctx, struct sock *sk)" in _text("-l")
    assert "#if 1" in _text("-c")
    assert "family != AF_INET6" in _text("-6")


def test_ebpf_prints_the_program_and_loads_nothing() -> None:
    out = run_rbcc("tool", "tcpretrans", "--ebpf", "-4")
    assert out.returncode == 0, out.stderr
    assert "TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)" in out.stdout and "family != AF_INET" in out.stdout


@pytest.mark.needs_root
def test_lossprobe_kprobe_passes_the_verifier() -> None:
    with BPF(text=_text("-l")) as b:
        fn = b.load_func("trace_tlp", BPF.KPROBE)
        assert fn.fd > 0


@pytest.mark.without_kprobes
def test_lossprobe_without_kprobes_stops_with_one_line() -> None:
    out = run_rbcc("tool", "tcpretrans", "-l")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == f"tcpretrans: {tcpretrans.NO_KPROBES}\n"


@dataclass
class Resent:
    server_port: int
    client_port: int
    isn: int


def _syn_resent(family: int = socket.AF_INET) -> Resent:
    """A client whose first SYN is dropped (the listener's accept queue is full) and resent a second
    later, then accepted; its ports and initial sequence number."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen(0)  # one connection waiting fills the accept queue
        port = server.getsockname()[1]
        first = socket.create_connection((host, port))
        late = socket.socket(family)
        late.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            late.connect((host, port))
        time.sleep(1.4)  # the first SYN resend is due after one second
        server.accept()[0].close()
        late.settimeout(5)
        server.accept()[0].close()
        # the ISN: with no data sent, the next sequence number is ISN + 1
        late.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
        late.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        seq = struct.unpack("I", late.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
        resent = Resent(port, late.getsockname()[1], (seq - 1) & 0xFFFFFFFF)
        late.close()
        first.close()
    return resent


def _started(line: str) -> bool:
    return line.startswith("Tracing retransmits ... Hit Ctrl-C to end")


@pytest.mark.needs_root
def test_sees_a_resent_syn_with_its_sequence_number() -> None:
    done: list[Resent] = []
    fields = lambda out: [line.split() for line in out.splitlines() if "R>" in line]  # noqa: E731
    seen = lambda out: bool(done) and any(f[5].endswith(f":{done[0].server_port}") for f in fields(out))  # noqa: E731
    out, err = run_interrupted(["tool", "tcpretrans", "-s"], _started, lambda: done.append(_syn_resent()), seen)
    r = done[0]
    assert out.splitlines()[1].split() == ["TIME", "PID", "IP", "LADDR:LPORT", "T>", "RADDR:RPORT", "STATE", "SEQ"]
    mine = [f for f in fields(out) if f[5] == f"127.0.0.1:{r.server_port}"]
    assert mine, out + err
    # TIME PID IP LADDR:LPORT T> RADDR:RPORT STATE SEQ
    assert mine[0][2:] == [
        "4",
        f"127.0.0.1:{r.client_port}",
        "R>",
        f"127.0.0.1:{r.server_port}",
        "SYN_SENT",
        str(r.isn),
    ]
    assert len(mine[0][0].split(":")) == 3


@pytest.mark.needs_root
def test_count_per_flow_and_family_filter() -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback (::1): {e}")
    done: list[Resent] = []
    both = lambda: done.extend([_syn_resent(), _syn_resent(socket.AF_INET6)])  # noqa: E731
    # -c prints at Ctrl-C; -6 leaves the IPv4 resend out
    out, err = run_interrupted(["tool", "tcpretrans", "-c", "-6"], _started, both)
    lines = out.splitlines()
    at = lines.index("") + 1
    assert lines[at].split() == ["LADDR:LPORT", "RADDR:RPORT", "RETRANSMITS"], out
    flows = {(f[0], f[2]): int(f[3]) for f in (line.split() for line in lines[at + 1 :])}
    r6 = done[1]
    assert flows.get((f"[::1]#{r6.client_port}", f"[::1]#{r6.server_port}"), 0) >= 1, out + err
    assert not any(str(done[0].server_port) in k[1] for k in flows), out


@dataclass
class Flow:
    client_port: int
    server_port: int


def _acks_dropped() -> Flow:
    """An established loopback connection whose client sends 100 bytes while a socket filter drops
    every packet reaching it, the server's ACKs included, for a second: the client's kernel sends a tail
    loss probe, then resends on its retransmission timer. The filter then goes and the data is acked."""
    insns = ctypes.create_string_buffer(DROP_ALL, len(DROP_ALL))
    fprog = struct.pack("HxxxxxxP", 1, ctypes.addressof(insns))  # struct sock_fprog
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = socket.create_connection(server.getsockname())
        peer = server.accept()[0]
        with client, peer:
            client.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            client.sendall(b"x" * 100)
            time.sleep(1)
            assert peer.recv(200) == b"x" * 100
            client.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            time.sleep(0.3)
            return Flow(client.getsockname()[1], server.getsockname()[1])


def _rows_of(out: str, flow: Flow) -> list[list[str]]:
    """The rows (TIME PID IP LADDR:LPORT T> RADDR:RPORT STATE) of the client's side of ``flow``."""
    here, there = f"127.0.0.1:{flow.client_port}", f"127.0.0.1:{flow.server_port}"
    return [f for f in (line.split() for line in out.splitlines()) if len(f) == 7 and f[3] == here and f[5] == there]


@pytest.mark.needs_root
def test_sees_data_resent_while_its_acks_are_dropped() -> None:
    done: list[Flow] = []
    out, err = run_interrupted(
        ["tool", "tcpretrans"],
        _started,
        lambda: done.append(_acks_dropped()),
        lambda out: bool(done) and bool(_rows_of(out, done[0])),
    )
    rows = _rows_of(out, done[0])
    assert rows, out + err
    assert {tuple(r[2:]) for r in rows} == {
        ("4", f"127.0.0.1:{done[0].client_port}", "R>", f"127.0.0.1:{done[0].server_port}", "ESTABLISHED")
    }, out


@pytest.mark.needs_kprobes
def test_lossprobe_shows_the_tail_loss_probe_before_the_resends() -> None:
    with open("/proc/sys/net/ipv4/tcp_early_retrans") as f:
        if int(f.read()) < 3:
            pytest.skip("tail loss probes are off here (net.ipv4.tcp_early_retrans < 3)")
    done: list[Flow] = []
    out, err = run_interrupted(
        ["tool", "tcpretrans", "-l"],
        _started,
        lambda: done.append(_acks_dropped()),
        lambda out: bool(done) and any(r[4] == "R>" for r in _rows_of(out, done[0])),
    )
    rows = _rows_of(out, done[0])
    kinds = [r[4] for r in rows]
    assert kinds and kinds[0] == "L>" and "R>" in kinds, out + err
    assert rows[0][2:] == [
        "4",
        f"127.0.0.1:{done[0].client_port}",
        "L>",
        f"127.0.0.1:{done[0].server_port}",
        "ESTABLISHED",
    ]
