"""sslsniff: the C for its options; live, a TLS client and server of the test's own (Python's ssl module,
so OpenSSL's SSL_write_ex/SSL_read_ex) exchange two known messages, and each shows up as the writer's
WRITE/SEND and the reader's READ/RECV, with its length and its plaintext (as hex with --hexdump), traced
in the libssl that process maps; GnuTLS through a ctypes client of libgnutls, and through gnutls-cli
where gnutls-bin is installed."""

from __future__ import annotations

import binascii
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from _bpfutil import run_interrupted
from _toolcheck import text_of

from rbcc.tools import sslsniff

PAIR_COMM = "tls-pair"


def test_filters_and_buffer_size_are_in_the_c() -> None:
    plain = text_of(sslsniff)
    assert "return 0 || 0;" in plain and "#define MAX_BUF_SIZE 8192" in plain
    filtered = text_of(sslsniff, "-p", "123", "-u", "1000", "--max-buffer-size", "100")
    assert "return pid != 123 || uid != 1000;" in filtered and "#define MAX_BUF_SIZE 100" in filtered
    # the _ex calls' length comes through their fourth argument
    assert "PT_REGS_PARM4(ctx)" in plain


def test_extra_lib_names_a_type_and_an_existing_file(tmp_path: Path) -> None:
    lib = tmp_path / "libssl.so.9"
    lib.write_bytes(b"")
    args = sslsniff.build_parser().parse_args(["--extra-lib", f"openssl:{lib}", "-g", "-n", "-o"])
    assert sslsniff.library_paths(args) == [("openssl", str(lib), str(lib))]
    for bad in ("openssl", f"boringssl:{lib}", f"gnutls:{tmp_path}/none.so"):
        with pytest.raises(SystemExit):
            sslsniff.build_parser().parse_args(["--extra-lib", bad])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make the test's self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "1"]
        + ["-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


# The server side of both exchanges, in the child: a Python ssl server (cert, key) on one end of a
# socket pair, in a thread, that reads `ask` and answers `answer`. SERVER_CONTEXT comes before the
# child's "ready", SERVE after the "go" line.
SERVER_CONTEXT = """server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(cert, key)
"""
SERVE = """a, b = socket.socketpair()
def serve():
    s = server_ctx.wrap_socket(a, server_side=True)
    assert s.recv(4096) == ask.encode()
    s.sendall(answer.encode())
server = threading.Thread(target=serve)
server.start()
"""


# A client and a server in one process (named PAIR_COMM), over a socket pair: the client writes
# argv[3], the server reads it and answers argv[4]. It starts (with ssl and libssl loaded), prints its
# pid, and waits for a line on stdin before the handshake.
PAIR = f"""
import socket, ssl, sys, threading
cert, key, ask, answer = sys.argv[1:5]
with open("/proc/self/comm", "w") as f:
    f.write("{PAIR_COMM}")
{SERVER_CONTEXT}client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
client_ctx.check_hostname = False
client_ctx.verify_mode = ssl.CERT_NONE
print("ready", flush=True)
sys.stdin.readline()
{SERVE}c = client_ctx.wrap_socket(b, server_hostname="localhost")
c.sendall(ask.encode())
assert c.recv(4096) == answer.encode()
c.close()
server.join()
"""


class Pair(NamedTuple):
    process: subprocess.Popen[str]
    ask: str
    answer: str

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self.process.wait(timeout=30) == 0


@pytest.fixture
def tls_pair(certificate: tuple[Path, Path]) -> Iterator[Pair]:
    ask = f"hello from the client of test {os.getpid()}"
    answer = f"the server's longer answer to test {os.getpid()}: " + "0123456789" * 8
    cert, key = certificate
    child = subprocess.Popen(
        [sys.executable, "-c", PAIR, str(cert), str(key), ask, answer],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        yield Pair(child, ask, answer)
    finally:
        child.kill()
        child.wait()


class Event(NamedTuple):
    func: str
    comm: str
    pid: int
    length: int
    data: str


# TIME(s) counts from the first event printed, and the events of two CPUs may arrive out of order: an
# event printed after the first may have happened before it (a negative time, as in bcc's tool).
BLOCK = re.compile(r"^(\S+) +-?[\d.]+ +(\S+) +(\d+) +(\d+)[^\n]*\n----- DATA -----\n(.*?)\n----- END DATA", re.M | re.S)


def events(out: str) -> list[Event]:
    return [Event(m[1], m[2], int(m[3]), int(m[4]), m[5]) for m in BLOCK.finditer(out)]


def exchanged(pair: Pair, out: str, shown: dict[str, str]) -> list[Event]:
    """The events of ``pair``'s process whose data is one of ``shown``' values."""
    return [e for e in events(out) if e.pid == pair.process.pid and e.data in shown.values()]


def header_ok(line: str) -> bool:
    return line.split()[:5] == ["FUNC", "TIME(s)", "COMM", "PID", "LEN"]


@pytest.mark.needs_root
def test_shows_both_sides_of_an_exchange_in_the_library_the_process_maps(tls_pair: Pair) -> None:
    pid = tls_pair.process.pid
    mapped = {path for _, _, path in _maps(pid) if os.path.basename(path).startswith("libssl.so")}
    if not mapped:
        pytest.skip("this Python's ssl module does not use a shared libssl (statically linked OpenSSL)")
    (libssl,) = mapped
    args = sslsniff.build_parser().parse_args(["-p", str(pid), "-g", "-n"])
    (found,) = sslsniff.library_paths(args)
    assert found[1] is not None and os.path.samefile(found[1], libssl)

    texts = {"ask": tls_pair.ask, "answer": tls_pair.answer}
    out, _ = run_interrupted(
        ["tool", "sslsniff", "-p", str(pid)],
        header_ok,
        tls_pair.go,
        lambda out: len(exchanged(tls_pair, out, texts)) >= 4,
    )
    seen = sorted((e.func, e.comm, e.length, e.data) for e in exchanged(tls_pair, out, texts))
    assert seen == sorted(
        [
            ("WRITE/SEND", PAIR_COMM, len(tls_pair.ask), tls_pair.ask),
            ("READ/RECV", PAIR_COMM, len(tls_pair.ask), tls_pair.ask),
            ("WRITE/SEND", PAIR_COMM, len(tls_pair.answer), tls_pair.answer),
            ("READ/RECV", PAIR_COMM, len(tls_pair.answer), tls_pair.answer),
        ]
    ), out
    # -p: nothing of any other process
    assert {e.pid for e in events(out)} == {pid}, out


def _maps(pid: int) -> list[tuple[int, int, str]]:
    from rbcc._probes.uprobes import file_mappings

    return file_mappings(pid)


@pytest.mark.needs_root
def test_hexdump_by_command_name_in_the_systems_libssl(tls_pair: Pair) -> None:
    texts = {
        "ask": textwrap.fill(binascii.hexlify(tls_pair.ask.encode()).decode(), width=32),
        "answer": textwrap.fill(binascii.hexlify(tls_pair.answer.encode()).decode(), width=32),
    }
    out, _ = run_interrupted(
        ["tool", "sslsniff", "--hexdump", "-c", PAIR_COMM, "-l"],
        lambda line: header_ok(line) and line.split()[-1] == "LAT(ms)",
        tls_pair.go,
        lambda out: len(exchanged(tls_pair, out, texts)) >= 4,
    )
    ours = exchanged(tls_pair, out, texts)
    assert sorted((e.func, e.data) for e in ours) == sorted(
        [
            ("WRITE/SEND", texts["ask"]),
            ("READ/RECV", texts["ask"]),
            ("WRITE/SEND", texts["answer"]),
            ("READ/RECV", texts["answer"]),
        ]
    ), out
    assert all(len(line) <= 32 for e in ours for line in e.data.splitlines())
    # -c: only that command's calls
    assert {e.comm for e in events(out)} == {PAIR_COMM}, out


@pytest.mark.needs_root
def test_gnutls_cli_plaintext_is_shown(certificate: tuple[Path, Path]) -> None:
    cli = shutil.which("gnutls-cli")
    if cli is None:
        pytest.skip("gnutls-bin is not installed: no gnutls-cli to drive GnuTLS's gnutls_record_send/recv")
    cert, key = certificate
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ask = f"gnutls says hello to test {os.getpid()}"
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True) as s:
            received.append(s.recv(4096))

    def client() -> None:
        server = threading.Thread(target=serve)
        server.start()
        subprocess.run(
            [cli, "--insecure", "--port", str(port), "127.0.0.1"],
            input=ask + "\n",
            capture_output=True,
            text=True,
            timeout=30,
        )
        server.join(timeout=30)

    def ours(out: str) -> list[Event]:
        return [e for e in events(out) if e.comm == "gnutls-cli" and ask in e.data]

    out, _ = run_interrupted(["tool", "sslsniff", "-o", "-n"], header_ok, client, lambda out: bool(ours(out)))
    listener.close()
    (sent,) = ours(out)
    assert sent.func == "WRITE/SEND" and sent.length == len(ask) + 1 and received == [(ask + "\n").encode()]


# A GnuTLS client (through ctypes: no gnutls-bin needed) and a Python ssl server in one process named
# GNUTLS_COMM: the client sends argv[3] with gnutls_record_send, the server answers argv[4], which the
# client reads with gnutls_record_recv.
GNUTLS_COMM = "gnutls-pair"
GNUTLS_PAIR = f"""
import ctypes, socket, ssl, sys, threading
cert, key, ask, answer, libgnutls = sys.argv[1:6]
g = ctypes.CDLL(libgnutls)
g.gnutls_record_send.restype = g.gnutls_record_recv.restype = ctypes.c_ssize_t
g.gnutls_record_send.argtypes = g.gnutls_record_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
with open("/proc/self/comm", "w") as f:
    f.write("{GNUTLS_COMM}")
{SERVER_CONTEXT}print("ready", flush=True)
sys.stdin.readline()
{SERVE}assert g.gnutls_global_init() == 0
cred, session = ctypes.c_void_p(), ctypes.c_void_p()
assert g.gnutls_certificate_allocate_credentials(ctypes.byref(cred)) == 0
assert g.gnutls_init(ctypes.byref(session), 2) == 0  # GNUTLS_CLIENT; no verification asked for
assert g.gnutls_set_default_priority(session) == 0
assert g.gnutls_credentials_set(session, 1, cred) == 0  # GNUTLS_CRD_CERTIFICATE
g.gnutls_transport_set_int2(session, b.fileno(), b.fileno())
while (rc := g.gnutls_handshake(session)) < 0:
    assert not g.gnutls_error_is_fatal(rc), rc
data = ask.encode()
assert g.gnutls_record_send(session, data, len(data)) == len(data)
got = ctypes.create_string_buffer(4096)
while (n := g.gnutls_record_recv(session, got, 4096)) < 0:
    assert not g.gnutls_error_is_fatal(n), n
assert got.raw[:n] == answer.encode()
server.join()
"""


@pytest.mark.needs_root
def test_gnutls_record_send_and_recv_are_shown(certificate: tuple[Path, Path]) -> None:
    from rbcc._probes.uprobes import find_library

    libgnutls = find_library("gnutls")
    if libgnutls is None:
        pytest.skip("libgnutls30 is not installed: no libgnutls.so to trace")
    cert, key = certificate
    ask = f"gnutls asks test {os.getpid()}"
    answer = f"and python answers test {os.getpid()} at more length"
    child = subprocess.Popen(
        [sys.executable, "-c", GNUTLS_PAIR, str(cert), str(key), ask, answer, libgnutls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pair = Pair(child, ask, answer)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        texts = {"ask": ask, "answer": answer}
        out, _ = run_interrupted(
            ["tool", "sslsniff", "--no-openssl", "--no-nss", "-p", str(child.pid)],
            header_ok,
            pair.go,
            lambda out: len(exchanged(pair, out, texts)) >= 2,
        )
    finally:
        child.kill()
        child.wait()
    # the server's side is OpenSSL's, not traced here: the client's send and receive only
    seen = sorted((e.func, e.comm, e.length, e.data) for e in exchanged(pair, out, texts))
    assert seen == [("READ/RECV", GNUTLS_COMM, len(answer), answer), ("WRITE/SEND", GNUTLS_COMM, len(ask), ask)], out
