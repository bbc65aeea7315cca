"""Queue and stack maps (bcc's QueueStack) on the real kernel: values pushed by a BPF program and by
Python, popped and peeked in FIFO/LIFO order, the full and empty cases, and no key-based access."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _bpfutil import target_cflags

from rbcc import BPF
from rbcc.errors import BPFError
from rbcc.table import QueueStack, TableBase

pytestmark = pytest.mark.needs_root

PROGRAM = r"""
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 4); __type(value, u64); } q SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 4); __type(value, u64); } st SEC(".maps");
struct ev { u32 pid; u32 seq; char tag[8]; };
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 16); __type(value, struct ev); } evq SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, u64); } popped SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, u32); } seq SEC(".maps");

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u32 zero = 0;
    u32 *n = bpf_map_lookup_elem(&seq, &zero);
    if (!n)
        return 0;
    *n += 1;
    struct ev e = {.pid = pid, .seq = *n, .tag = "tp"};
    bpf_map_push_elem(&evq, &e, BPF_ANY);
    return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_getpgid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    // the program side of a queue Python fills: take one value
    u64 v;
    u32 zero = 0;
    if (bpf_map_pop_elem(&q, &v) == 0)
        bpf_map_update_elem(&popped, &zero, &v, BPF_ANY);
    return 0;
}
"""


@pytest.fixture(scope="module")
def bpf() -> Iterator[BPF]:
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        yield b


@pytest.fixture(autouse=True)
def drained(bpf: BPF) -> None:
    for name in ("q", "st", "evq"):
        bpf[name].values()


def test_queue_is_fifo_and_the_program_pops_what_python_pushed(bpf: BPF) -> None:
    q = bpf["q"]
    assert isinstance(q, QueueStack)
    assert not isinstance(q, TableBase)  # as in bcc: not a mapping
    for v in (10, 20, 30):
        q.push(v)
    assert q.peek().value == 10
    os.getpgid(0)  # the program pops the head
    assert bpf["popped"][0].value == 10
    assert q.pop().value == 20
    assert [v.value for v in q.values()] == [30]
    with pytest.raises(KeyError):
        q.pop()
    with pytest.raises(KeyError):
        q.peek()


def test_stack_is_lifo(bpf: BPF) -> None:
    st = bpf["st"]
    assert isinstance(st, QueueStack)
    for v in (1, 2, 3):
        st.push(st.Leaf(v))
    assert st.peek().value == 3
    assert [v.value for v in st.values()] == [3, 2, 1]


def test_a_full_queue_refuses_unless_told_to_drop_the_oldest(bpf: BPF) -> None:
    q = bpf["q"]
    assert q.max_entries == 4
    for v in range(4):
        q.push(v)
    with pytest.raises(BPFError, match=r"push to map 'q': it is full \(4 entries\).*BPF_EXIST"):
        q.push(99)
    q.push(99, flags=QueueStack.BPF_EXIST)
    assert QueueStack.BPF_F_EXIST == QueueStack.BPF_EXIST == 2
    assert [v.value for v in q.values()] == [1, 2, 3, 99]


def test_values_from_the_program_with_a_struct_leaf(bpf: BPF) -> None:
    evq = bpf["evq"]
    for _ in range(3):
        os.getppid()
    got = [(e.pid, e.seq, e.tag) for e in evq.values()]
    first = got[0][1]
    assert got == [(os.getpid(), first + i, b"tp") for i in range(3)]
    assert evq.values() == []


def test_values_stop_at_max_entries_while_a_producer_refills(bpf: BPF) -> None:
    # bcc pops at most max_entries values, so a busy producer can't keep values() going forever
    q = bpf["q"]
    for v in range(4):
        q.push(v)
    gen = q.itervalues()
    taken = [next(gen).value]
    q.push(100)
    taken += [v.value for v in gen]
    assert taken == [0, 1, 2, 3]
    assert q.pop().value == 100


def test_no_keys_no_length(bpf: BPF) -> None:
    q = bpf["q"]
    with pytest.raises(TypeError, match="no keys, so no length"):
        len(q)
    with pytest.raises(TypeError, match="item access"):
        q[0]
    with pytest.raises(TypeError, match="item assignment"):
        q[0] = 1
    with pytest.raises(TypeError, match="iteration"):
        iter(q)
    assert bool(q)  # truthiness doesn't need a length, as in bcc
    assert not hasattr(q, "items_lookup_batch")


def test_text_form_of_a_queue_value(bpf: BPF) -> None:
    evq = bpf["evq"]
    leaf = evq.Leaf(pid=5, seq=6, tag=b"ab")
    assert evq.leaf_sprintf(leaf) == b'{ 0x5 0x6 "ab" }'
    back = evq.leaf_scanf('{ 0x5 0x6 "ab" }')
    assert (back.pid, back.seq, back.tag) == (5, 6, b"ab")
    assert evq.get_fd() == evq.map_fd >= 0
