#!/usr/bin/env python3
"""uobjnew: summarize object allocations in high-level languages (USDT) or malloc() sizes in C.

Java, Ruby and Tcl allocations come from their USDT probes (the table in rbcc._tools.languages); for C
(-l c), a uprobe on libc's malloc() in the process counts blocks by size, as bcc does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from rbcc import BPF, USDT
from rbcc._tools import common, languages
from rbcc._tools.languages import LANGUAGES, Alloc, languages_with, read_string

__all__ = ["bpf_text", "build_parser", "main", "select"]

EXAMPLES = """examples:
    rbcc tool uobjnew -l java 145         # summarize Java allocations in process 145
    rbcc tool uobjnew -l c 2020 1         # grab malloc() sizes and print every second
    rbcc tool uobjnew -l ruby 6712 -C 10  # top 10 Ruby types by number of allocations
    rbcc tool uobjnew -l ruby 6712 -S 10  # top 10 Ruby types by total size
"""

# C last: every process maps libc, so it is the guess only when no runtime is there
OBJNEW_LANGUAGES = [lang for lang in languages_with("allocs") if lang != "c"] + ["c"]

HEADER = r"""
struct key_t {
#if MALLOC_TRACING
    u64 size;
#else
    char name[50];
#endif
};

struct val_t {
    u64 total_size;
    u64 num_allocs;
};

BPF_HASH(allocs, struct key_t, struct val_t);
"""

MALLOC = r"""
int alloc_entry(struct pt_regs *ctx) {
    struct key_t key = {};
    struct val_t *valp, zero = {};
    u64 size = PT_REGS_PARM1(ctx);
    key.size = size;
    valp = allocs.lookup_or_try_init(&key, &zero);
    if (valp) {
        valp->total_size += size;
        valp->num_allocs += 1;
    }
    return 0;
}
"""

PROBE = r"""
int FUNC(struct pt_regs *ctx) {
    struct key_t key = {INIT};
    struct val_t *valp, zero = {};
    u64 size = 0;
READ
    valp = allocs.lookup_or_try_init(&key, &zero);
    if (valp) {
        valp->total_size += size;
        valp->num_allocs += 1;
    }
    return 0;
}
"""


def build_parser(prog: str = "uobjnew", language: str | None = None) -> argparse.ArgumentParser:
    p = common.parser(prog, "Summarize object allocations in high-level languages.", EXAMPLES)
    p.add_argument("-l", "--language", choices=OBJNEW_LANGUAGES, default=language, help="language to trace")
    p.add_argument("pid", type=int, help="process id to attach to")
    p.add_argument("interval", type=int, nargs="?", help="print every specified number of seconds")
    p.add_argument("-C", "--top-count", type=int, help="number of most frequently allocated types to print")
    p.add_argument("-S", "--top-size", type=int, help="number of largest types by allocated bytes to print")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="verbose mode: print the BPF program (for debugging purposes)"
    )
    return p


def _read(alloc: Alloc) -> str:
    """C reading an allocation's type name and size into ``key.name`` and ``size``."""
    c = ""
    if alloc.size_arg is not None:
        c += f"    bpf_usdt_readarg({alloc.size_arg}, ctx, &size);\n"
    if alloc.name_arg is None:
        return c
    return c + "    u64 classptr = 0;\n" + read_string("key.name", "classptr", alloc.name_arg, alloc.name_len_arg)


def functions(language: str) -> list[tuple[str, str]]:
    """(USDT probe, BPF function) of each allocation probe of ``language`` (none for C)."""
    if language == "c":
        return []
    return [(a.probe, f"alloc_entry_{i}") for i, a in enumerate(LANGUAGES[language].allocs)]


def bpf_text(args: argparse.Namespace) -> str:
    """The C (pure): allocations of ``args.language`` by type, or for C malloc() blocks by size."""
    text = HEADER.replace("MALLOC_TRACING", "1" if args.language == "c" else "0")
    if args.language == "c":
        return text + MALLOC
    for alloc, (_, func) in zip(LANGUAGES[args.language].allocs, functions(args.language)):
        init = f'.name = "{alloc.name}"' if alloc.name else ""
        text += PROBE.replace("FUNC", func).replace("INIT", init).replace("READ\n", _read(alloc))
    return text


def select(rows: list[tuple[Any, Any]], args: argparse.Namespace) -> list[tuple[Any, Any]]:
    """The (key, value) rows to print, ascending: the -C most allocated, the -S largest, or all by size."""
    if args.top_count:
        return sorted(rows, key=lambda kv: kv[1].num_allocs)[-args.top_count :]
    ordered = sorted(rows, key=lambda kv: kv[1].total_size)
    return ordered[-args.top_size :] if args.top_size else ordered


def main(argv: Sequence[str] | None = None, prog: str = "uobjnew", language: str | None = None) -> int:
    args = build_parser(prog, language).parse_args(argv)
    return common.guard(prog, lambda: run(args))


def run(args: argparse.Namespace) -> int:
    done, text = languages.begin(args, OBJNEW_LANGUAGES, bpf_text)
    if done is not None:
        return done
    usdt = USDT(pid=args.pid)
    for probe, func in functions(args.language):
        usdt.enable_probe_or_bail(probe, func)
    b = BPF(text=text, usdt_contexts=[usdt] if functions(args.language) else [])
    if args.language == "c":
        b.attach_uprobe(name="c", sym="malloc", fn_name="alloc_entry", pid=args.pid)
    print("Tracing allocations in process %d (language: %s)... Ctrl-C to quit." % (args.pid, args.language))
    hint = LANGUAGES[args.language].hint
    if hint:
        print(hint)
    sys.stdout.flush()
    with b:
        for last in common.intervals(args.interval or 99999999, None):
            print()
            print("%-30s %8s %12s" % ("NAME/TYPE", "# ALLOCS", "# BYTES"))
            for key, value in select(list(b["allocs"].items()), args):
                if args.language == "c":
                    name = "block size %d" % key.size
                else:
                    name = key.name.decode("utf-8", "replace")
                print("%-30s %8d %12d" % (name, value.num_allocs, value.total_size))
            sys.stdout.flush()
            if last or not args.interval:
                break
            b["allocs"].clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
