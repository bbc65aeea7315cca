"""Benchmarks of the engine: compile and cache times, a running tool's memory, event throughput.

Run as root: ``python3 tests/bench/bench_engine.py`` (or ``make bench``). Every measurement runs in a
fresh Python process, so one does not warm or bloat another. The numbers are compared with bcc's when
bcc is importable here (Debian's python3-bpfcc); bcc cannot compile programs on a machine without
kernel headers, so then only its import footprint (libbcc with LLVM linked in) is measured.

Exits 1 when a target is missed; prints a table, and JSON with ``--json PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024

# Targets. A tool that hits the cache must not pay for a compiler; a cold compile (kernel facts cached)
# should feel instant at a prompt; a running tool should weigh a small fraction of bcc's ~130 MiB.
TARGETS = {
    "hit_s": 0.25,
    "cold_s": 1.0,
    # a generated program of 3,000 nested structs: the rewriter must stay linear in a program's size
    "large_s": 1.0,
    "rss_mib": 48.0,
    "rss_vs_bcc": 0.35,
    # per-record callbacks, drained (bench_vs_bcc.py's figures 5 and 6 when bcc cannot run)
    "perf_events_per_s": 100_000.0,
    "ring_events_per_s": 100_000.0,
    "items_entries_per_s": 500_000.0,
    # numpy: one Python call per drain instead of per event, and (perf) a wakeup per 64 events of a
    # CPU instead of per event (wakeup_events=64): both keep up with the generator's getppid rate.
    "perf_batch_events_per_s": 400_000.0,
    "ring_batch_events_per_s": 400_000.0,
    "to_numpy_entries_per_s": 2_000_000.0,
}

# What each child process reports: time spent in BPF(), its resident memory afterwards, and whether
# libclang is mapped into it.
PROBE = textwrap.dedent(
    """
    import json, os, sys, time
    t0 = time.perf_counter()
    from rbcc import BPF
    t1 = time.perf_counter()
    text = sys.argv[1]
    if text.startswith("@"):  # a program too long for an argument, in a file
        text = open(text[1:]).read()
    b = BPF(text=text)
    t2 = time.perf_counter()
    rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
    libclang = any("libclang" in l for l in open("/proc/self/maps"))
    print(json.dumps({"import_s": t1 - t0, "bpf_s": t2 - t1, "rss": rss, "libclang_mapped": libclang,
                      "cache_hit": b.cache_hit}))
    """
)

COUNTER = """
BPF_HASH(calls, u32, u64);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    calls.increment(pid);
    return 0;
}
"""

# Streams events to Python: a generator process (started first, waiting on stdin) makes N getppid
# calls; each becomes one event whose fields the callback decodes, as a bcc tool's callback does, or
# (KIND-batch) which arrive as numpy arrays, one callback per drain.
STREAM = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from rbcc import BPF
    kind, n = sys.argv[1], int(sys.argv[2])
    batch = kind.endswith("-batch")
    kind = kind.split("-")[0]
    if batch:
        import numpy  # a notebook has it imported already: not part of the stream's time
    gen = subprocess.Popen([sys.executable, "-c",
        "import os, sys\\nsys.stdin.readline()\\nfor _ in range(%d): os.getppid()" % n],
        stdin=subprocess.PIPE)
    text = '''
    struct ev_t { u32 pid; u32 cpu; u64 ts; char comm[16]; };
    OUTPUT;
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        if ((bpf_get_current_pid_tgid() >> 32) != GEN)
            return 0;
        struct ev_t e = {};
        e.pid = bpf_get_current_pid_tgid() >> 32;
        e.cpu = bpf_get_smp_processor_id();
        e.ts = bpf_ktime_get_ns();
        bpf_get_current_comm(&e.comm, sizeof(e.comm));
        SUBMIT;
        return 0;
    }
    '''
    if kind == "perf":
        text = text.replace("OUTPUT", "BPF_PERF_OUTPUT(events)")
        text = text.replace("SUBMIT", "events.perf_submit(args, &e, sizeof(e))")
    else:
        # a full ring buffer drops the record without telling user space: count the drops here
        text = text.replace("OUTPUT", "BPF_RINGBUF_OUTPUT(events, 1024); BPF_ARRAY(dropped, u64, 1)")
        text = text.replace("SUBMIT", "if (events.ringbuf_output(&e, sizeof(e), 0)) dropped.atomic_increment(0)")
    b = BPF(text=text, cflags=["-DGEN=%d" % gen.pid])
    seen = [0]
    lost = [0]
    def on_event(cpu, data, size):
        e = b["events"].event(data)
        if e.pid == gen.pid:
            seen[0] += 1
    def on_batch(events):
        seen[0] += int((events["pid"] == gen.pid).sum())
    def on_lost(count):
        lost[0] += count
    def drops():
        return b["dropped"][0].value if kind == "ring" else 0
    if kind == "perf":
        if batch:
            b["events"].open_perf_buffer(on_batch, page_cnt=256, lost_cb=on_lost, wakeup_events=64, batch=True)
        else:
            b["events"].open_perf_buffer(on_event, page_cnt=256, lost_cb=on_lost)
        poll = b.perf_buffer_poll
    else:
        if batch:
            b["events"].open_ring_buffer(on_batch, batch=True)
        else:
            b["events"].open_ring_buffer(lambda ctx, data, size: on_event(0, data, size))
        poll = b.ring_buffer_poll
    t0 = time.perf_counter()
    gen.stdin.write(b"go\\n")
    gen.stdin.flush()
    deadline = t0 + 60
    while seen[0] + lost[0] + drops() < n and time.perf_counter() < deadline:
        poll(100)
    lost[0] += drops()
    t1 = time.perf_counter()
    gen.wait()
    print(json.dumps({"events": seen[0], "lost": lost[0], "seconds": t1 - t0}))
    """
)

# Reads a full hash map of N entries as a tool's interval print does (items(), which reads in batches),
# and entry by entry (iteritems(), two syscalls per entry) for comparison.
MAP_READ = textwrap.dedent(
    """
    import ctypes, json, sys, time
    import numpy  # imported already where to_numpy is used (a notebook): not part of its time
    from rbcc import BPF
    n = int(sys.argv[1])
    b = BPF(text="BPF_HASH(counts, u32, u64, %d);" % n)
    t = b["counts"]
    t.items_update_batch((t.Key * n)(*range(n)), (t.Leaf * n)(*range(n)))
    t0 = time.perf_counter()
    batch = t.items()
    t1 = time.perf_counter()
    single = list(t.iteritems())
    t2 = time.perf_counter()
    keys, values = t.to_numpy()
    t3 = time.perf_counter()
    assert len(batch) == len(single) == len(keys) == n and (keys == values).all()
    print(json.dumps({"entries": n, "batch_s": t1 - t0, "single_s": t2 - t1, "numpy_s": t3 - t2}))
    """
)

BCC_PROBE = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    import bcc
    t1 = time.perf_counter()
    rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
    err = ""
    try:
        bcc.BPF(text="int f(void *ctx) { return 0; }")
    except Exception as e:
        err = (str(e) or type(e).__name__).splitlines()[0][:120]
    print(json.dumps({"import_s": t1 - t0, "rss": rss, "compile_error": err}))
    """
)


@dataclass
class Result:
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool = True


def child(script: str, *args: str, env: dict[str, str] | None = None, python: str = sys.executable) -> dict:
    out = subprocess.run(
        [python, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        timeout=300,
    )
    if out.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def unique(text: str) -> str:
    """The same program with a fresh comment, so the object cache misses."""
    return f"{text}\n// {uuid.uuid4()}\n"


def bench_compile(results: list[Result]) -> dict:
    with tempfile.TemporaryDirectory(prefix="rbcc-bench-") as cache:
        env = {"RBCC_CACHE_DIR": cache}
        first = child(PROBE, unique(COUNTER), env=env)
        results.append(Result("first compile on a new machine (vmlinux.h, plain headers)", first["bpf_s"], "s"))
        # the first compile left the PCHs building in the background, for the compiles after it
        deadline = time.monotonic() + 120
        pchs = Path(cache) / "kernel"
        while len(list(pchs.glob("*/pch/*.pch"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        cold = child(PROBE, unique(COUNTER), env=env)
        results.append(
            Result(
                "cold compile (new program)",
                cold["bpf_s"],
                "s",
                f"< {TARGETS['cold_s']}",
                cold["bpf_s"] < TARGETS["cold_s"],
            )
        )
        text = unique(COUNTER)
        child(PROBE, text, env=env)
        hit = child(PROBE, text, env=env)
        results.append(
            Result(
                "cache hit",
                hit["bpf_s"],
                "s",
                f"< {TARGETS['hit_s']}",
                hit["bpf_s"] < TARGETS["hit_s"] and hit["cache_hit"],
            )
        )
        results.append(Result("import rbcc", hit["import_s"], "s"))
        for label, run in (("after a cold compile", cold), ("after a cache hit", hit)):
            results.append(
                Result(
                    f"libclang mapped {label}", float(run["libclang_mapped"]), "bool", "0", not run["libclang_mapped"]
                )
            )
        parts = ["struct s0 { int a; };"]
        parts += [f"struct s{i} {{ struct s{i - 1} inner; int v{i}; }};" for i in range(1, 3000)]
        parts.append("TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { struct s2999 *p = 0; return p ? 1 : 0; }")
        large_file = Path(cache) / "large.c"
        large_file.write_text(unique("\n".join(parts)))
        large = child(PROBE, f"@{large_file}", env=env)
        results.append(
            Result(
                "cold compile of 3,000 nested structs",
                large["bpf_s"],
                "s",
                f"< {TARGETS['large_s']}",
                large["bpf_s"] < TARGETS["large_s"],
            )
        )
        rss = hit["rss"] / MIB
        results.append(Result("RSS of a running tool", rss, "MiB", f"< {TARGETS['rss_mib']}", rss < TARGETS["rss_mib"]))
        return hit


def bench_bcc(results: list[Result], ours: dict) -> None:
    # Debian's python3-bpfcc installs for the system interpreter, which may not be this one.
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        try:
            bcc = child(BCC_PROBE, python=python)
            break
        except SystemExit:
            continue
    else:
        results.append(Result("bcc: not importable here (apt-get install python3-bpfcc to compare)", 0, ""))
        return
    rss = bcc["rss"] / MIB
    results.append(Result("bcc: RSS after `import bcc` (LLVM linked in)", rss, "MiB"))
    ratio = ours["rss"] / bcc["rss"]
    results.append(
        Result(
            "rbcc tool RSS / bcc import RSS", ratio, "x", f"< {TARGETS['rss_vs_bcc']}", ratio < TARGETS["rss_vs_bcc"]
        )
    )
    if bcc["compile_error"]:
        results.append(Result(f"bcc: cannot compile here: {bcc['compile_error']}", 0, ""))


def bench_events(results: list[Result], n: int) -> None:
    for kind in ("perf", "ring", "perf-batch", "ring-batch"):
        run = child(STREAM, kind, str(n))
        rate = run["events"] / run["seconds"] if run["seconds"] else 0.0
        into = "numpy batches" if kind.endswith("batch") else "Python callback"
        name = f"{kind.split('-')[0]} buffer → {into} ({run['events']} events, {run['lost']} lost)"
        if not kind.endswith("batch"):
            # A record per wakeup: the kernel's wakeups and the scheduler of this shared machine set the
            # pace (the same core ran it at 60k, 85k and 140k ev/s in runs the same day), not the
            # consumer. The consumer's own pace has its targets in bench_vs_bcc.py (figures 5 and 6,
            # drained buffers), side by side with bcc's.
            results.append(Result(f"{name} (info: paced by wakeups)", rate, "ev/s"))
            continue
        key = f"{kind.replace('-', '_')}_events_per_s"
        results.append(Result(name, rate, "ev/s", f"> {TARGETS[key]:.0f}", rate > TARGETS[key]))


def bench_map_read(results: list[Result], n: int) -> None:
    run = child(MAP_READ, str(n))
    rate = run["entries"] / run["batch_s"]
    key = "items_entries_per_s"
    results.append(
        Result(
            f"items() of a {n}-entry hash (batch reads)", rate, "ent/s", f"> {TARGETS[key]:.0f}", rate > TARGETS[key]
        )
    )
    results.append(Result("iteritems() of the same (entry by entry)", run["entries"] / run["single_s"], "ent/s"))
    rate = run["entries"] / run["numpy_s"]
    key = "to_numpy_entries_per_s"
    results.append(Result("to_numpy() of the same", rate, "ent/s", f"> {TARGETS[key]:.0f}", rate > TARGETS[key]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--events", type=int, default=200_000, help="events per throughput run")
    parser.add_argument("--entries", type=int, default=50_000, help="hash map entries per map-read run")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the benchmarks load BPF programs: run them as root", file=sys.stderr)
        return 2
    results: list[Result] = []
    ours = bench_compile(results)
    bench_bcc(results, ours)
    bench_events(results, args.events)
    bench_map_read(results, args.entries)
    width = max(len(r.name) for r in results)
    for r in results:
        mark = "" if not r.target else ("  ok" if r.ok else "  MISSED")
        value = f"{r.value:12.3f} {r.unit:5}" if r.unit else " " * 18
        print(f"{r.name:<{width}} {value} {r.target:>10}{mark}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
