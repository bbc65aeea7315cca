"""cachestat: bcc's hit/miss arithmetic, its kprobe programs loaded through the verifier, and the one
line it ends with on a kernel without kprobes."""

from __future__ import annotations

import pytest
from _toolcheck import assert_kprobes_load, refusal_line, text_of

from rbcc.tools import cachestat


def test_hits_and_misses_as_bcc_derives_them() -> None:
    # 100 accesses, 10 of them buffer dirties: 90 lookups; 30 pages added, 5 dirtied: 25 misses
    assert cachestat.ratios(100, 30, 5, 10) == (65, 25, 65 / 90)
    # readahead adds more pages than were looked up: every lookup a miss
    assert cachestat.ratios(10, 50, 0, 0) == (0, 10, 0.0)
    assert cachestat.ratios(0, 0, 0, 0) == (0, 0, 0.0)


@pytest.mark.needs_root
def test_kprobe_programs_pass_the_verifier() -> None:
    assert_kprobes_load(text_of(cachestat), cachestat.PROBES.values())


@pytest.mark.without_kprobes
def test_without_kprobes_it_says_so_in_one_line() -> None:
    line = refusal_line("tool", "cachestat", "1", "1")
    assert line.startswith("cachestat: needs kprobes on folio_mark_accessed") and "CONFIG_KPROBES" in line
