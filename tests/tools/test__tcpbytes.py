"""tcptop's and tcpsubnet's shared source (rbcc._tools.tcpbytes): the tracepoints where the kernel has
them, else bcc's kprobes (their C through the verifier here; attaching them needs a kernel with
kprobes: the tools' kprobe tests run in the VM), else one line naming both."""

from __future__ import annotations

import argparse

import pytest
from _toolcheck import assert_kprobes_load

from rbcc import BPF, _core
from rbcc._tools import tcpbytes
from rbcc.errors import KernelFeatureError
from rbcc.tools import tcpsubnet, tcptop


def test_the_tracepoint_first_then_kprobes_else_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BPF, "tracepoint_exists", staticmethod(lambda category, event: True))
    assert tcpbytes.source() == "tracepoint"
    monkeypatch.setattr(BPF, "tracepoint_exists", staticmethod(lambda category, event: False))
    monkeypatch.setattr(_core, "has_kprobes", lambda: True)
    assert tcpbytes.source() == "kprobe"
    monkeypatch.setattr(_core, "has_kprobes", lambda: False)
    with pytest.raises(KernelFeatureError, match="sock:sock_send_length.*tcp_sendmsg"):
        tcpbytes.source()


def test_each_source_has_its_probes() -> None:
    assert "sock_recv_length" in tcpbytes.probes("tracepoint")
    assert "sock_recv_length" not in tcpbytes.probes("tracepoint", receive=False)
    assert "trace_tcp_cleanup_rbuf" in tcpbytes.probes("kprobe") and "kprobe__" not in tcpbytes.probes("kprobe")
    assert "trace_tcp_cleanup_rbuf" not in tcpbytes.probes("kprobe", receive=False)


@pytest.mark.needs_root
def test_the_kprobe_c_passes_the_verifier() -> None:
    top = tcptop.bpf_text(tcptop.build_parser().parse_args(["-p", "1"]), "kprobe")
    assert_kprobes_load(top, ["trace_tcp_sendmsg", "trace_tcp_cleanup_rbuf"])
    subnet = tcpsubnet.bpf_text(tcpsubnet.build_parser().parse_args([]), "kprobe")
    assert_kprobes_load(subnet, ["trace_tcp_sendmsg"])


@pytest.mark.without_kprobes
def test_without_kprobes_attaching_them_names_the_feature() -> None:
    with BPF(text=tcptop.bpf_text(argparse.Namespace(pid=None, ipv4=False, ipv6=False), "kprobe")) as b:
        with pytest.raises(KernelFeatureError, match="kprobe"):
            tcpbytes.attach(b, "kprobe")
