"""criticalstat: the C for IRQ-off and preemption-off sections, and the one line it ends with on a
kernel without the preemptirq tracepoints (this one, and Debian's stock kernels: none has them, so no
run sees a section)."""

from __future__ import annotations

import pytest
from _toolcheck import refusal_line, text_of

from rbcc import BPF
from rbcc.tools import criticalstat


def test_sections_of_either_kind() -> None:
    irq = text_of(criticalstat)
    assert "TRACEPOINT_PROBE(preemptirq, irq_disable)" in irq and "TRACEPOINT_PROBE(preemptirq, irq_enable)" in irq
    assert "now - s->ts < 100000ULL" in irq
    preempt = text_of(criticalstat, "-p", "-d", "500")
    assert "TRACEPOINT_PROBE(preemptirq, preempt_disable)" in preempt and "irq_disable" not in preempt
    assert "now - s->ts < 500000ULL" in preempt


@pytest.mark.needs_root
def test_without_the_tracepoints_it_says_so_in_one_line() -> None:
    if BPF.tracepoint_exists("preemptirq", "irq_disable"):
        pytest.skip("this kernel has the preemptirq tracepoints: nothing to refuse")
    line = refusal_line("tool", "criticalstat")
    assert line.startswith("criticalstat: needs the preemptirq tracepoints (irq_disable, ")
    assert "CONFIG_PREEMPTIRQ_TRACEPOINTS" in line and "hardirqs" in line
