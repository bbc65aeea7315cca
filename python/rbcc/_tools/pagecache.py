"""What cachestat and cachetop share: the page cache's functions they count with kprobes (page accesses
have no tracepoint), the programs' names, and loading those programs where the kernel has kprobes."""

from __future__ import annotations

import argparse

from .. import BPF
from . import block

__all__ = ["ACCESSED", "ADDED", "BUFFER_DIRTY", "DIRTIED", "FUNCTIONS", "PROBES", "load"]

# Counter index, and the kernel functions (newest name first) that count towards it.
ACCESSED, ADDED, DIRTIED, BUFFER_DIRTY = range(4)
FUNCTIONS = {
    ACCESSED: ("folio_mark_accessed", "mark_page_accessed"),
    ADDED: ("filemap_add_folio", "add_to_page_cache_lru"),
    DIRTIED: ("folio_account_dirtied", "account_page_dirtied"),
    BUFFER_DIRTY: ("mark_buffer_dirty",),
}
# the C's program for each counter: int do_<what>(struct pt_regs *ctx)
PROBES = {ACCESSED: "do_accessed", ADDED: "do_added", DIRTIED: "do_dirtied", BUFFER_DIRTY: "do_buffer_dirty"}


def load(args: argparse.Namespace, tool: str, text: str, alternative: str) -> BPF | None:
    """The tool's programs loaded and attached to the functions this kernel has (None under --ebpf,
    which prints the C); without kprobes, KernelFeatureError naming ``alternative``."""

    def attach(b: BPF) -> None:
        for index, names in FUNCTIONS.items():
            present = [n for n in names if BPF.get_kprobe_functions(f"^{n}$".encode())]
            if present:
                b.attach_kprobe(event=present[0], fn_name=PROBES[index])

    functions = "folio_mark_accessed, filemap_add_folio, folio_account_dirtied, mark_buffer_dirty"
    return block.load_with_kprobes(
        args, tool, text, attach, functions, "page cache accesses have no tracepoint", alternative
    )
