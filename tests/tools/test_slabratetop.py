"""slabratetop: its probe, and a live run that counts the sockets this test makes: each one an object
of sock_inode_cache, at the size /proc/slabinfo gives."""

from __future__ import annotations

import socket

import pytest
from _bpfutil import run_interrupted
from _toolcheck import refusal_line, text_of

from rbcc import BPF
from rbcc.tools import slabratetop


def test_reads_the_cache_from_the_raw_tracepoint() -> None:
    text = text_of(slabratetop, "-C", "-r", "5", "2", "3")
    assert "RAW_TRACEPOINT_PROBE(kmem_cache_alloc)" in text and "(struct kmem_cache *)ctx->args[2]" in text


def _object_size(cache: str) -> int | None:
    with open("/proc/slabinfo") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] == cache:
                return int(fields[3])
    return None


def _passes_the_cache() -> bool:
    """Whether kmem_cache_alloc's tracepoint passes the cache (its format then names it)."""
    BPF.tracepoint_exists("kmem", "kmem_cache_alloc")  # mounts tracefs where it is not
    try:
        with open(slabratetop.FORMAT) as f:
            return "char[] name;" in f.read()
    except OSError:
        return False


@pytest.mark.needs_root
def test_without_the_cache_in_the_tracepoint_it_says_so() -> None:
    if _passes_the_cache():
        pytest.skip("this kernel's kmem_cache_alloc tracepoint passes the cache: nothing to refuse")
    line = refusal_line("tool", "slabratetop", "1", "1")
    assert line.startswith("slabratetop: needs a kmem_cache_alloc tracepoint that passes the cache")


@pytest.mark.needs_root
def test_counts_the_socket_inodes_this_test_allocates() -> None:
    if not _passes_the_cache():
        pytest.skip("this kernel's kmem_cache_alloc tracepoint does not pass the cache (no name field)")
    size = _object_size("sock_inode_cache")
    if size is None:
        pytest.skip("no sock_inode_cache in /proc/slabinfo (merged into another cache): nothing to name")
    pairs = 1000

    def workload() -> None:
        made = [socket.socketpair() for _ in range(pairs)]
        for a, b in made:
            a.close()
            b.close()

    def rows(out: str) -> list[list[str]]:
        return [f for f in (line.split() for line in out.splitlines()) if len(f) == 3 and f[0] == "sock_inode_cache"]

    out, _ = run_interrupted(
        ["tool", "slabratetop", "-C", "-r", "100", "1"],
        lambda h: h.startswith("Tracing... Output every 1 secs."),
        workload,
        lambda out: sum(int(r[1]) for r in rows(out)) >= 2 * pairs,
    )
    assert out.rstrip().endswith("Detaching..."), out
    counted = rows(out)
    # the sockets made in one second or two; each row's bytes are its allocations at the cache's size
    assert sum(int(r[1]) for r in counted) >= 2 * pairs, out
    assert all(int(r[2]) == int(r[1]) * size for r in counted), (size, counted)
    assert "CACHE" in out and "loadavg:" in out
