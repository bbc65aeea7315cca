#!/usr/bin/env python3
"""sslsniff: show the plaintext that processes write to and read from TLS libraries.

Uprobes on the libraries' read and write calls, as bcc: OpenSSL's SSL_write and SSL_read, and also
SSL_write_ex and SSL_read_ex (OpenSSL 1.1.1 and later; Python's ssl module and many programs use
only those, whose length is what the call stores through its fourth argument); GnuTLS's
gnutls_record_send and gnutls_record_recv; NSS's PR_Write, PR_Send, PR_Read and PR_Recv (in libnspr4).
The buffer is noted where the call starts and read where it returns, so a read shows what it
received. With -p the libraries are the ones that process maps (/proc/PID/maps: a program with its
own OpenSSL is traced in that copy); otherwise the system's, from the loader cache, as bcc finds them.
A library that is not installed is skipped, with a note.
"""

from __future__ import annotations

import argparse
import binascii
import ctypes
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from rbcc import BPF
from rbcc._probes.uprobes import file_mappings, find_library
from rbcc._tools import common
from rbcc.errors import AttachError

__all__ = ["bpf_text", "build_parser", "library_paths", "main"]

EXAMPLES = """examples:
    rbcc tool sslsniff              # sniff OpenSSL, GnuTLS and NSS calls
    rbcc tool sslsniff -p 181       # sniff PID 181 only (in the libraries it maps)
    rbcc tool sslsniff -u 1000      # sniff only UID 1000
    rbcc tool sslsniff -c curl      # sniff curl command only
    rbcc tool sslsniff --no-openssl # don't show OpenSSL calls
    rbcc tool sslsniff --no-gnutls  # don't show GnuTLS calls
    rbcc tool sslsniff --no-nss     # don't show NSS calls
    rbcc tool sslsniff --hexdump    # show data as hex instead of trying to decode it as UTF-8
    rbcc tool sslsniff -x           # show process UID and TID
    rbcc tool sslsniff -l           # show function latency
    rbcc tool sslsniff -l --handshake  # show SSL handshake latency
    rbcc tool sslsniff --extra-lib openssl:/path/libssl.so.1.1 # sniff extra library
"""

# what each library is called (its loader name, as bcc attaches it) and which calls carry data:
# (symbol, entry probe, return probe)
LIBRARIES = {"openssl": "ssl", "gnutls": "gnutls", "nss": "nspr4"}
CALLS = {
    "openssl": (
        ("SSL_write", "tls_rw_enter", "tls_write_return"),
        ("SSL_read", "tls_rw_enter", "tls_read_return"),
        ("SSL_write_ex", "tls_rw_ex_enter", "tls_write_return"),
        ("SSL_read_ex", "tls_rw_ex_enter", "tls_read_return"),
    ),
    "gnutls": (
        ("gnutls_record_send", "tls_rw_enter", "tls_write_return"),
        ("gnutls_record_recv", "tls_rw_enter", "tls_read_return"),
    ),
    "nss": (
        ("PR_Write", "tls_rw_enter", "tls_write_return"),
        ("PR_Send", "tls_rw_enter", "tls_write_return"),
        ("PR_Read", "tls_rw_enter", "tls_read_return"),
        ("PR_Recv", "tls_rw_enter", "tls_read_return"),
    ),
}
READ, WRITE, HANDSHAKE = 0, 1, 2
FUNC_NAMES = {READ: "READ/RECV", WRITE: "WRITE/SEND", HANDSHAKE: "HANDSHAKE"}

BPF_TEXT = r"""
#include <uapi/linux/ptrace.h>
#include <linux/sched.h>

#define MAX_BUF_SIZE __MAX_BUF_SIZE__

struct tls_event_t {
    u64 timestamp_ns;
    u64 delta_ns;
    u32 pid;
    u32 tid;
    u32 uid;
    u32 len;
    int buf_filled;
    int rw;
    char comm[TASK_COMM_LEN];
    u8 buf[MAX_BUF_SIZE];
};

// a call in progress, by thread: when it started, its buffer, and (the _ex calls) where it will
// store the length it moved
struct tls_call_t {
    u64 ts;
    u64 buf;
    u64 moved;
};

BPF_PERCPU_ARRAY(scratch, struct tls_event_t, 1);
BPF_HASH(calls, u32, struct tls_call_t);
BPF_PERF_OUTPUT(tls_events);

static __always_inline int skip(u32 pid, u32 uid) {
    return PID_FILTER || UID_FILTER;
}

static __always_inline int note_call(u64 buf, u64 moved) {
    u64 id = bpf_get_current_pid_tgid();
    u32 tid = (u32)id;
    if (skip(id >> 32, (u32)bpf_get_current_uid_gid()))
        return 0;
    struct tls_call_t call = {.ts = bpf_ktime_get_ns(), .buf = buf, .moved = moved};
    calls.update(&tid, &call);
    return 0;
}

// SSL_write(ssl, buf, num), gnutls_record_send(session, buf, len), PR_Write(fd, buf, amount), ...
int tls_rw_enter(struct pt_regs *ctx) {
    return note_call(PT_REGS_PARM2(ctx), 0);
}

// SSL_write_ex(ssl, buf, num, &written), SSL_read_ex(ssl, buf, num, &readbytes)
int tls_rw_ex_enter(struct pt_regs *ctx) {
    return note_call(PT_REGS_PARM2(ctx), PT_REGS_PARM4(ctx));
}

static __always_inline struct tls_event_t *start_event(u64 now, struct tls_call_t *call, int rw) {
    u32 zero = 0;
    struct tls_event_t *e = scratch.lookup(&zero);
    if (!e)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    e->timestamp_ns = now;
    e->delta_ns = now - call->ts;
    e->pid = id >> 32;
    e->tid = (u32)id;
    e->uid = (u32)bpf_get_current_uid_gid();
    e->buf_filled = 0;
    e->rw = rw;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return e;
}

static __always_inline int take_call(struct tls_call_t *c) {
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct tls_call_t *call = calls.lookup(&tid);
    if (!call)
        return 0;  // entered before tracing began, or filtered out
    *c = *call;
    calls.delete(&tid);
    return 1;
}

static __always_inline int data_returned(struct pt_regs *ctx, int rw) {
    u64 now = bpf_ktime_get_ns();
    struct tls_call_t c;
    if (!take_call(&c))
        return 0;
    long ret = PT_REGS_RC(ctx);
    u64 len = 0;
    if (c.moved) {
        // the _ex calls return 1 on success and store the length
        if ((int)ret != 1 || bpf_probe_read_user(&len, sizeof(len), (void *)c.moved))
            return 0;
    } else {
        if ((int)ret <= 0)
            return 0;
        len = (u32)(int)ret;
    }
    if (len == 0)
        return 0;
    struct tls_event_t *e = start_event(now, &c, rw);
    if (!e)
        return 0;
    e->len = (u32)len;
    u32 copy = len < MAX_BUF_SIZE ? len : MAX_BUF_SIZE;
    if (copy > MAX_BUF_SIZE)  // for the verifier: the bound it tracks
        return 0;
    if (bpf_probe_read_user(&e->buf, copy, (void *)c.buf) == 0)
        e->buf_filled = 1;
    else
        copy = 0;
    tls_events.perf_submit(ctx, e, offsetof(struct tls_event_t, buf) + copy);
    return 0;
}

int tls_read_return(struct pt_regs *ctx) {
    return data_returned(ctx, 0);
}

int tls_write_return(struct pt_regs *ctx) {
    return data_returned(ctx, 1);
}

int tls_handshake_enter(struct pt_regs *ctx) {
    return note_call(0, 0);
}

int tls_handshake_return(struct pt_regs *ctx) {
    u64 now = bpf_ktime_get_ns();
    struct tls_call_t c;
    if (!take_call(&c))
        return 0;
    int ret = (int)PT_REGS_RC(ctx);
    if (ret <= 0)  // the handshake failed, or wants more I/O
        return 0;
    struct tls_event_t *e = start_event(now, &c, 2);
    if (!e)
        return 0;
    e->len = ret;
    tls_events.perf_submit(ctx, e, offsetof(struct tls_event_t, buf));
    return 0;
}
"""


def library_arg(text: str) -> tuple[str, str]:
    """--extra-lib's TYPE:PATH."""
    kind, sep, path = text.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"Invalid SSL library param: {text!r}")
    if kind not in LIBRARIES:
        raise argparse.ArgumentTypeError(f"Invalid SSL library type: {kind!r}")
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"Invalid library path: {path!r}")
    return kind, path


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("sslsniff", "Sniff SSL data", EXAMPLES)
    p.add_argument("-p", "--pid", type=int, help="sniff this PID only.")
    p.add_argument("-u", "--uid", type=int, default=None, help="sniff this UID only.")
    p.add_argument("-x", "--extra", action="store_true", help="show extra fields (UID, TID)")
    p.add_argument("-c", "--comm", help="sniff only commands matching string.")
    p.add_argument("-o", "--no-openssl", action="store_false", dest="openssl", help="do not show OpenSSL calls.")
    p.add_argument("-g", "--no-gnutls", action="store_false", dest="gnutls", help="do not show GnuTLS calls.")
    p.add_argument("-n", "--no-nss", action="store_false", dest="nss", help="do not show NSS calls.")
    p.add_argument("-d", "--debug", action="count", default=0, help="debug mode.")
    p.add_argument(
        "--hexdump", action="store_true", help="show data as hexdump instead of trying to decode it as UTF-8"
    )
    p.add_argument("--max-buffer-size", type=common.positive_int, default=8192, help="Size of captured buffer")
    p.add_argument("-l", "--latency", action="store_true", help="show function latency")
    p.add_argument(
        "--handshake", action="store_true", help="show SSL handshake latency, enabled only if latency option is on."
    )
    p.add_argument(
        "--extra-lib",
        type=library_arg,
        action="append",
        help="Intercept calls from extra library (format: lib_type:lib_path)",
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """The C for these options (pure: no kernel needed)."""
    return (
        BPF_TEXT.replace("PID_FILTER", f"pid != {int(args.pid)}" if args.pid else "0")
        .replace("UID_FILTER", f"uid != {int(args.uid)}" if args.uid is not None else "0")
        .replace("__MAX_BUF_SIZE__", str(int(args.max_buffer_size)))
    )


def mapped_library(pid: int, loader_name: str) -> str | None:
    """The file of library ``loader_name`` ("ssl": libssl.so*) that process ``pid`` maps, if any."""
    prefix = f"lib{loader_name}.so"
    try:
        mappings = file_mappings(pid)
    except OSError:
        return None
    for _, _, path in mappings:
        if os.path.basename(path).startswith(prefix):
            return f"/proc/{pid}/root{path}" if os.path.exists(f"/proc/{pid}/root{path}") else path
    return None


def library_paths(args: argparse.Namespace) -> list[tuple[str, str | None, str]]:
    """(kind, path or None where not found, what was looked for) of each library to trace."""
    found: list[tuple[str, str | None, str]] = []
    for kind, loader_name in LIBRARIES.items():
        if not getattr(args, kind):
            continue
        if args.pid:
            found.append((kind, mapped_library(args.pid, loader_name), f"lib{loader_name} mapped by PID {args.pid}"))
        else:
            found.append((kind, find_library(loader_name), f"lib{loader_name} in the loader cache"))
    for kind, path in args.extra_lib or ():
        found.append((kind, path, path))
    return found


def attach(b: BPF, args: argparse.Namespace) -> int:
    """Attach to every library found; the number of probes attached."""
    from rbcc import _core

    attached = 0
    pid = args.pid or -1
    for kind, path, looked_for in library_paths(args):
        if path is None:  # bcc would stop here; a library that is not installed is not an error
            print(f"sslsniff: no {looked_for}: its {kind} calls are not traced", file=sys.stderr)
            continue
        symbols = {name for name, _, _ in _core.elf_functions(path)}
        calls = [c for c in CALLS[kind] if c[0] in symbols]
        if kind == "openssl" and args.latency and args.handshake and "SSL_do_handshake" in symbols:
            calls.append(("SSL_do_handshake", "tls_handshake_enter", "tls_handshake_return"))
        for sym, entry, ret in calls:
            b.attach_uprobe(name=path, sym=sym, fn_name=entry, pid=pid)
            b.attach_uretprobe(name=path, sym=sym, fn_name=ret, pid=pid)
            attached += 2
    return attached


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("sslsniff", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    b = common.load(args, bpf_text(args), print_text=args.debug)
    if b is None:
        return 0
    with b:
        if attach(b, args) == 0:
            wanted = ", ".join(k for k in LIBRARIES if getattr(args, k)) or "none"
            raise AttachError(f"no TLS library to trace (looked for: {wanted}; --extra-lib TYPE:PATH names one)")
        header = "%-12s %-18s %-16s %-7s %-7s" % ("FUNC", "TIME(s)", "COMM", "PID", "LEN")
        if args.extra:
            header += " %-7s %-7s" % ("UID", "TID")
        if args.latency:
            header += " %-7s" % "LAT(ms)"
        print(header, flush=True)
        printer = Printer(b, args)
        b["tls_events"].open_perf_buffer(printer.on_event)
        common.poll_events(b)
    return 0


class Printer:
    """Prints each event as bcc's sslsniff does: a line, then the data between markers."""

    def __init__(self, b: BPF, args: argparse.Namespace) -> None:
        self.table = b["tls_events"]
        self.args = args
        self.start = 0
        self.buf_offset = -1

    def on_event(self, cpu: int, data: int, size: int) -> None:
        e: Any = self.table.event(data)
        comm = e.comm.decode("utf-8", "replace")
        if self.args.comm and self.args.comm != comm:
            return
        if self.buf_offset < 0:
            self.buf_offset = type(e).buf.offset
        # only what the record holds: the program sends the buffer's filled part only
        shown = min(e.len, self.args.max_buffer_size, max(size - self.buf_offset, 0)) if e.buf_filled else 0
        buf = ctypes.string_at(data + self.buf_offset, shown) if shown else b""
        if self.start == 0:
            self.start = e.timestamp_ns
        line = "%-12s %-18.9f %-16s %-7d %-6d" % (
            FUNC_NAMES.get(e.rw, "?"),
            (e.timestamp_ns - self.start) / 1e9,
            comm,
            e.pid,
            e.len,
        )
        if self.args.extra:
            line += " %-7d %-7d" % (e.uid, e.tid)
        if self.args.latency:
            line += " %-7s" % ("%.3f" % (e.delta_ns / 1e6) if e.delta_ns else "N/A")
        if not shown:
            print(line, flush=True)
            return
        if self.args.hexdump:
            text = textwrap.fill(binascii.hexlify(buf).decode(), width=32)
        else:
            text = buf.decode("utf-8", "replace")
        lost = e.len - shown
        end = "----- END DATA -----" if lost <= 0 else f"----- END DATA (TRUNCATED, {lost} bytes lost) -----"
        print(f"{line}\n----- DATA -----\n{text}\n{end}\n\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
