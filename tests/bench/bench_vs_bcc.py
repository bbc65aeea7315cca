"""rbcc side by side with real bcc: the same programs and the same work, in alternating fresh processes.

Run as root: ``python3 tests/bench/bench_vs_bcc.py`` (or ``make bench``, which first runs
../shared/tools/bcc-anchor.sh when it exists, so that Debian's bcc 0.26 can compile on a kernel
without headers). bcc runs as ``/usr/bin/python3`` with that script's bccpatch directory on
PYTHONPATH; rbcc runs in this interpreter and uses whatever rbcc it imports.

Each figure is measured --runs times per side; the runs of the two sides alternate (rbcc, bcc, bcc,
rbcc, ...: the order flips every round), each in a new process. Every round gets its own empty
RBCC_CACHE_DIR, which the round's rbcc runs fill as a machine's would: the first compile dumps
vmlinux.h and builds the PCHs (figure 3), the next compiles a new program with them (2), and the next
loads that program from the object cache (1). The table shows medians, the ratio rbcc/bcc (rates:
rbcc's rate over bcc's) and the goal for that ratio. When bcc cannot run here, that is said in one line
and rbcc's figures are compared with bench_engine.py's absolute targets instead.

The figures (programs and child scripts in _sidebyside.py; times are medians of per-run values):
 1-3  time of the BPF(text=...) call alone, for the same tool-like program on both sides
 4    VmRSS of the figure-1 process once BPF() has returned (probes attached)
 5-6  records a per-record Python callback decodes with b["events"].event(data), per second, from a
      generator's getppid calls until each record is delivered or counted lost (ring: in a BPF_ARRAY)
 7    one items() / list(keys()) / values() / `for k in t` of a BPF_HASH(u32, u64) filled beforehand
 8    from just before the harness starts the interpreter to the callback's clock reading of the first
      record, which the harness triggers once the child says it is ready
 6    also read with wakeup_events=64, where the consumer, not the kernel's wakeups, sets the pace
      (the goal is on that one)
 info start to `BPF` imported (bcc's sitecustomize imports bcc at start); a bare `python -c pass`

Exits 1 when a goal is missed (or a run failed); ``--json PATH`` also writes every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _sidebyside import (
    COMPILE_CHILD,
    DRAIN,
    DRAIN_CHILD,
    DRAIN_PAGES,
    FIRST_EVENT,
    MAP_CHILD,
    STREAM,
    STREAM_CHILD,
    TOOL,
    ChildFailed,
    Side,
    bare_start,
    bcc_side,
    bcc_status,
    map_program,
    rbcc_side,
    run,
    run_first_event,
    unique,
)
from bench_engine import TARGETS

MIB = 1024 * 1024


@dataclass
class Figure:
    key: str
    name: str
    unit: str
    higher_is_better: bool = False
    goal: float | None = None  # for the ratio rbcc/bcc
    target: float | None = None  # rbcc's absolute target (bench_engine.TARGETS) when bcc is absent
    samples: dict[str, list[float]] = field(default_factory=lambda: {"rbcc": [], "bcc": []})
    notes: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)  # per side, one entry per run
    failed: str = ""

    def median(self, side: str) -> float | None:
        values = self.samples[side]
        return statistics.median(values) if values else None

    def ratio(self) -> float | None:
        ours, theirs = self.median("rbcc"), self.median("bcc")
        if ours is None or not theirs:
            return None
        return ours / theirs

    def verdict(self, with_bcc: bool) -> bool | None:
        """True / False against the goal (or the absolute target without bcc), None when there is none."""
        if self.failed:
            return False
        if with_bcc:
            limit, value = self.goal, self.ratio()
        else:
            limit, value = self.target, self.median("rbcc")
        if limit is None or value is None:
            return None
        return value >= limit if self.higher_is_better else value <= limit

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def detail(self, side: str, text: str) -> None:
        self.details.setdefault(side, []).append(text)


def figures(entries: int) -> dict[str, Figure]:
    items_target = entries / TARGETS["items_entries_per_s"]
    figs = [
        Figure(
            "hit", "1. BPF() of a program compiled before (rbcc: cache hit)", "s", goal=0.04, target=TARGETS["hit_s"]
        ),
        Figure("new", "2. BPF() of a new program (rbcc: PCHs built)", "s", goal=0.5, target=TARGETS["cold_s"]),
        Figure("first", "3. BPF() on a machine's first run (rbcc: empty cache)", "s", goal=2.5),
        Figure("rss", "4. RSS after attach", "MiB", goal=0.15, target=TARGETS["rss_mib"]),
        Figure(
            "ring_drain",
            "5. ring buffer drained → per-record callback",
            "rec/s",
            higher_is_better=True,
            goal=1.5,
            target=TARGETS["ring_events_per_s"],
        ),
        Figure(
            "perf_drain",
            "6. perf buffer drained → per-record callback",
            "rec/s",
            higher_is_better=True,
            goal=1.0,
            target=TARGETS["perf_events_per_s"],
        ),
        Figure("ring", "   (info) 5 streaming: delivered per second", "rec/s", higher_is_better=True),
        # Streaming, the kernel's wakeups set both sides' pace with a wakeup per record (~equal), and a
        # consumer that keeps up slows the generator it wakes for: the drained figures above are the
        # consumer's own pace; these show what streaming delivers (and drops: see the details).
        Figure("perf", "   (info) 6 streaming, a wakeup per record", "rec/s", higher_is_better=True),
        Figure("items", f"7. items() of a {entries}-entry hash", "s", goal=0.2, target=items_target),
        Figure("keys", "7. list(keys()) of the same", "s", goal=0.2),
        Figure("values", "7. values() of the same", "s", goal=0.2),
        Figure("iter", "7. `for k in t` over the same", "s", goal=0.2),
        Figure("first_event", "8. process start → first event in Python (rbcc: cached)", "s", goal=1.0),
        Figure("perf64", "   (info) 6 streaming, wakeup_events=64", "rec/s", higher_is_better=True),
        Figure("import", "   (info) process start → BPF imported", "s"),
        Figure("python", "   (info) process start → exit of `python -c pass`", "s"),
    ]
    return {f.key: f for f in figs}


class Bench:
    def __init__(self, args: argparse.Namespace, with_bcc: bool) -> None:
        self.args = args
        self.sides: list[Side] = [rbcc_side()] + ([bcc_side()] if with_bcc else [])
        self.figs = figures(args.entries)
        self.cache = ""

    def both(self, round_no: int, figure_keys: tuple[str, ...], measure) -> None:
        """Run `measure(side)` once per side, in this round's order; store what it returns per figure."""
        order = self.sides if round_no % 2 == 0 else list(reversed(self.sides))
        for side in order:
            try:
                values = measure(side)
            except (ChildFailed, subprocess.TimeoutExpired, AssertionError) as e:
                for key in figure_keys:
                    self.figs[key].failed = self.figs[key].failed or f"{side.name}: {str(e).strip()[:2000]}"
                print(f"  {side.name} run failed ({', '.join(figure_keys)}): {str(e).strip()[:2000]}", file=sys.stderr)
                continue
            for key, value in values.items():
                self.figs[key].samples[side.name].append(value)

    def env(self, side: Side) -> dict[str, str]:
        return {"RBCC_CACHE_DIR": self.cache} if side.name == "rbcc" else {}

    def wait_for_pchs(self, timeout: float = 120.0) -> None:
        pch = Path(self.cache) / "kernel"
        deadline = time.monotonic() + timeout
        # both PCHs (the parse's and the compile's); a build's lock may outlive its process
        while len(list(pch.glob("*/pch/*.pch"))) < 2:
            if time.monotonic() > deadline:
                raise ChildFailed("rbcc's precompiled headers were not built in the background")
            time.sleep(0.05)

    def compile_run(self, side: Side, text: str, expect_hit: bool | None) -> dict:
        out = run(side, COMPILE_CHILD, text, env=self.env(side))
        if side.name == "rbcc" and expect_hit is not None and out["cache_hit"] != expect_hit:
            raise ChildFailed(f"rbcc's cache {'missed' if expect_hit else 'hit'} where it should not have")
        return out

    def round(self, r: int) -> None:
        self.cache = tempfile.mkdtemp(prefix="rbcc-vs-bcc-")
        try:
            self._round(r)
        finally:
            shutil.rmtree(self.cache, ignore_errors=True)

    def _round(self, r: int) -> None:
        a = self.args
        # 3: nothing in the cache; 2: a new program, PCHs there; 1: that program again.
        first = unique(TOOL)

        def first_run(side: Side) -> dict:
            out = {"first": self.compile_run(side, first, False)["bpf_s"]}
            # rbcc's first compile leaves its PCHs building in the background: let them end before the
            # next run (of either side) is timed, so they neither slow it nor are missing for figure 2
            if side.name == "rbcc":
                self.wait_for_pchs()
            return out

        self.both(r, ("first",), first_run)
        new = unique(TOOL)
        self.both(r, ("new",), lambda s: {"new": self.compile_run(s, new, False)["bpf_s"]})

        def hit(side: Side) -> dict:
            out = self.compile_run(side, new, True)
            if out["llvm_mapped"]:
                self.figs["rss"].note(f"{side.name}: libclang/libLLVM mapped after BPF()")
            return {"hit": out["bpf_s"], "rss": out["rss"] / MIB, "import": out["start_to_import_s"]}

        self.both(r, ("hit", "rss", "import"), hit)

        self.both(r, ("python",), lambda s: {"python": bare_start(s)})

        # 8: rbcc's object is cached by one untimed run first.
        def first_event(side: Side) -> dict:
            if side.name == "rbcc":
                run_first_event(side, FIRST_EVENT, env=self.env(side))
            out = run_first_event(side, FIRST_EVENT, env=self.env(side))
            if side.name == "rbcc" and not out["cache_hit"]:
                raise ChildFailed("rbcc's cache missed for the first-event program")
            return {"first_event": out["event_s"]}

        self.both(r, ("first_event",), first_event)

        # 5 and 6 (and 6 with fewer wakeups)
        for kind in ("ring", "perf", "perf64"):

            def stream(side: Side, kind: str = kind) -> dict:
                out = run(side, STREAM_CHILD, kind, str(a.events), sys.executable, STREAM[kind], env=self.env(side))
                untold = a.events - out["records"] - out["lost"]
                # ring drops are counted by the program, so every record is accounted for; a perf buffer
                # may leave its last losses untold (see STREAM_CHILD), but never most of them
                if untold > (0 if kind == "ring" else a.events // 10):
                    raise ChildFailed(f"{kind}: {untold} of {a.events} records neither delivered nor lost")
                self.figs[kind].detail(side.name, f"{out['records']}/{out['lost']}/{untold}/{out['seconds']:.2f}")
                return {kind: out["records"] / out["seconds"]}

            self.both(r, (kind,), stream)

        # 5 and 6, drained
        for kind in ("ring_drain", "perf_drain"):

            def drained(side: Side, kind: str = kind) -> dict:
                n = a.drain_records
                out = run(side, DRAIN_CHILD, kind, str(n), sys.executable, DRAIN[kind], str(DRAIN_PAGES))
                if out["records"] + out["lost"] != n or out["lost"]:
                    raise ChildFailed(
                        f"{kind}: {out['records']} delivered, {out['lost']} lost of {n}: buffer too small"
                    )
                self.figs[kind].detail(side.name, f"{out['records']}/{out['seconds']:.3f}")
                return {kind: out["records"] / out["seconds"]}

            self.both(r, (kind,), drained)

        # 7
        keys = ("items", "keys", "values", "iter")
        text = map_program(a.entries)

        def map_read(side: Side) -> dict:
            out = run(side, MAP_CHILD, str(a.entries), text, env=self.env(side))
            return {k: out[k] for k in keys}

        self.both(r, keys, map_read)


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rec/s":
        return f"{value:,.0f}"
    if unit == "MiB":
        return f"{value:.1f}"
    if unit == "x":
        return f"{value:.3f}"
    return f"{value:.4f}" if value < 1 else f"{value:.3f}"


def report(figs: dict[str, Figure], with_bcc: bool, bcc_why: str) -> bool:
    """Print the table (medians) and the per-run details; True when no goal was missed."""
    header = (
        ["figure", "unit", "rbcc", "bcc", "rbcc/bcc", "goal", ""]
        if with_bcc
        else ["figure", "unit", "rbcc", "target", ""]
    )
    rows = [header]
    ok = True
    for f in figs.values():
        verdict = f.verdict(with_bcc)
        ok = ok and verdict is not False
        mark = "FAILED" if f.failed else {True: "ok", False: "MISSED", None: ""}[verdict]
        op = "≥" if f.higher_is_better else "≤"
        ours = fmt(f.median("rbcc"), f.unit)
        if with_bcc:
            goal = f"{op} {f.goal:g}" if f.goal is not None else ""
            ratio = f.ratio()
            rows.append([f.name, f.unit, ours, fmt(f.median("bcc"), f.unit), fmt(ratio, "x"), goal, mark])
        else:
            goal = f"{op} {fmt(f.target, f.unit)}" if f.target is not None else ""
            rows.append([f.name, f.unit, ours, goal, mark])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    if not with_bcc:
        print(f"{bcc_why}; rbcc's own figures against bench_engine.py's targets:")
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:-1], widths[2:-1])] + [row[-1]]
        print("  ".join(cells).rstrip())
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for f in figs.values():
        for n in f.notes:
            print(f"  {f.key}: {n}")
        for side, runs in f.details.items():
            lost = "dropped" if f.key == "ring" else "lost"
            what = "delivered/seconds" if f.key.endswith("_drain") else f"delivered/{lost}/untold/seconds"
            print(f"  {f.key}: {side} {what}: {', '.join(runs)}")
        if f.failed:
            print(f"  {f.key}: FAILED: {f.failed.splitlines()[0]}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure and side (default 5)")
    parser.add_argument(
        "--events", type=int, default=2_000_000, help="records per throughput run (default 2M: ≥ 1 s for bcc)"
    )
    parser.add_argument("--entries", type=int, default=100_000, help="hash map entries for figure 7")
    parser.add_argument(
        "--drain-records", type=int, default=1_000_000, help="records per drained buffer (figures 5 and 6)"
    )
    parser.add_argument("--no-bcc", action="store_true", help="measure rbcc alone, against absolute targets")
    parser.add_argument("--json", help="also write medians, ratios and every sample as JSON to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmarks load BPF programs: run them as root", file=sys.stderr)
        return 2
    bcc_why = "bcc left out (--no-bcc)" if args.no_bcc else bcc_status()
    with_bcc = not bcc_why
    print(f"rbcc ({sys.executable}) vs " + ("bcc (/usr/bin/python3)" if with_bcc else "nothing"), end="")
    print(f": {args.runs} runs per side, {args.events} records per stream, {args.entries} map entries")
    bench = Bench(args, with_bcc)
    for r in range(args.runs):
        print(f"round {r + 1}/{args.runs}", file=sys.stderr, flush=True)
        bench.round(r)
    ok = report(bench.figs, with_bcc, bcc_why)
    if args.json:
        out = {
            "bcc": "" if with_bcc else bcc_why,
            "figures": [
                {
                    "key": f.key,
                    "name": f.name,
                    "unit": f.unit,
                    "higher_is_better": f.higher_is_better,
                    "median_rbcc": f.median("rbcc"),
                    "median_bcc": f.median("bcc"),
                    "ratio": f.ratio(),
                    "goal": f.goal,
                    "target": f.target,
                    "ok": f.verdict(with_bcc),
                    "samples": f.samples,
                    "details": f.details,
                    "notes": f.notes,
                    "failed": f.failed,
                }
                for f in bench.figs.values()
            ],
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
