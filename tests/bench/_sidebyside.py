"""The parts of bench_vs_bcc.py that run inside the measured processes: the programs, the child scripts
and how a child is started for each side (rbcc or bcc).

Every child is a fresh interpreter that runs one script with ``-c``. Its first argument is the
CLOCK_MONOTONIC time at which the harness started it (just before fork and exec), its second the side;
it imports ``BPF`` from ``rbcc`` or ``bcc`` and the same script does the same work with either, and
prints one JSON line (the last line of its output) with what it measured.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BCC_PYTHON = "/usr/bin/python3"
# bcc-anchor.sh and its sitecustomize (which lets bcc 0.26 run without kprobes) live next to the repo.
ANCHOR = REPO.parent / "shared" / "tools" / "bcc-anchor.sh"
BCCPATCH = REPO.parent / "shared" / "tools" / "bccpatch"

# Figures 1-4: a small tool of the usual kind (syscall latency histogram and counts per process).
TOOL = textwrap.dedent(
    """
    #include <linux/sched.h>
    struct key_t { u32 pid; char comm[TASK_COMM_LEN]; };
    BPF_HASH(start, u32, u64);
    BPF_HASH(counts, struct key_t, u64);
    BPF_HISTOGRAM(dist);
    TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
        u32 tid = bpf_get_current_pid_tgid();
        u64 ts = bpf_ktime_get_ns();
        start.update(&tid, &ts);
        return 0;
    }
    TRACEPOINT_PROBE(raw_syscalls, sys_exit) {
        u32 tid = bpf_get_current_pid_tgid();
        u64 *tsp = start.lookup(&tid);
        if (!tsp)
            return 0;
        u64 delta = bpf_ktime_get_ns() - *tsp;
        start.delete(&tid);
        dist.increment(bpf_log2l(delta / 1000));
        struct key_t key = {};
        key.pid = bpf_get_current_pid_tgid() >> 32;
        bpf_get_current_comm(&key.comm, sizeof(key.comm));
        counts.increment(key);
        return 0;
    }
    """
)

# Figures 5 and 6: one record per getppid call of the generator (GEN, its pid, comes as -DGEN=).
STREAM_BODY = textwrap.dedent(
    """
    struct ev_t { u32 pid; u32 cpu; u64 ts; char comm[16]; };
    OUTPUT
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
    """
)
STREAM = {
    # A full ring buffer drops the record and only the program knows: it counts them in `dropped`.
    "ring": STREAM_BODY.replace("OUTPUT", "BPF_RINGBUF_OUTPUT(events, 1024);\nBPF_ARRAY(dropped, u64, 1);").replace(
        "SUBMIT", "if (events.ringbuf_output(&e, sizeof(e), 0))\n            dropped.increment(0)"
    ),
    "perf": STREAM_BODY.replace("OUTPUT", "BPF_PERF_OUTPUT(events);").replace(
        "SUBMIT", "events.perf_submit(args, &e, sizeof(e))"
    ),
}
STREAM["perf64"] = STREAM["perf"]  # the same program, read with wakeup_events=64


# Figures 5 and 6, drained: buffers big enough to hold every record of the generator (pinned to one
# CPU, so one perf ring takes them all), filled before anyone reads them.
DRAIN = {
    "ring_drain": STREAM["ring"].replace("BPF_RINGBUF_OUTPUT(events, 1024)", "BPF_RINGBUF_OUTPUT(events, 16384)"),
    "perf_drain": STREAM["perf"],
}
DRAIN_PAGES = 16384  # per CPU for perf: 64 MiB, ~1.3M records of this program


# Figure 7: a hash map filled by user space (no probe).
def map_program(entries: int) -> str:
    return f"BPF_HASH(counts, u32, u64, {entries});\n"


# Figure 8: the smallest useful tool. The pid to watch is set through a map, not compiled in, so the
# text (and so rbcc's cached object) is the same in every run.
FIRST_EVENT = textwrap.dedent(
    """
    struct ev_t { u32 pid; };
    BPF_ARRAY(target, u32, 1);
    BPF_PERF_OUTPUT(events);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32;
        u32 *want = target.lookup(&zero);
        if (!want || *want != pid)
            return 0;
        struct ev_t e = {.pid = pid};
        events.perf_submit(args, &e, sizeof(e));
        return 0;
    }
    """
)

# Common head of every child script: the side, the clock, the import (timed), resident memory.
PRELUDE = textwrap.dedent(
    """
    import json, os, sys, time
    T_EXEC, SIDE, ARGS = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
    T_MAIN = time.monotonic()
    _t = time.perf_counter()
    if SIDE == "bcc":
        from bcc import BPF
    else:
        from rbcc import BPF
    IMPORT_S = time.perf_counter() - _t
    T_IMPORTED = time.monotonic()
    def rss():
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
    def report(**kw):
        kw.update(start_to_main_s=T_MAIN - T_EXEC, import_s=IMPORT_S, start_to_import_s=T_IMPORTED - T_EXEC)
        print(json.dumps(kw), flush=True)
    """
)

# Figures 1-4: BPF() of ARGS[0], then the process's memory with the probes attached.
COMPILE_CHILD = PRELUDE + textwrap.dedent(
    """
    t0 = time.perf_counter()
    b = BPF(text=ARGS[0])
    t1 = time.perf_counter()
    libclang = any("libclang" in l or "libLLVM" in l for l in open("/proc/self/maps"))
    report(bpf_s=t1 - t0, rss=rss(), llvm_mapped=libclang, cache_hit=getattr(b, "cache_hit", None))
    """
)

# What the event children share once their generator runs: the program, loaded for the generator's
# pid, and bcc's per-record idiom, decoding each record to check whose it is.
EVENT_SETUP = textwrap.dedent(
    """
    b = BPF(text=text, cflags=["-DGEN=%d" % gen.pid])
    seen = [0]
    lost = [0]
    pid = gen.pid
    def on_record(cpu, data, size):
        if b["events"].event(data).pid == pid:
            seen[0] += 1
    def on_lost(count):
        lost[0] += count
    """
)

# Figures 5 and 6 (and 6b, perf64): a generator process (the harness's interpreter, waiting on stdin) makes N getppid
# calls; every record reaches a per-record callback that decodes it as a bcc tool does. Timed from the
# generator's go to when every record is accounted for (delivered, or lost / dropped for a full buffer).
STREAM_CHILD = (
    PRELUDE
    + textwrap.dedent(
        """
    import subprocess
    kind, n, gen_python, text = ARGS[0], int(ARGS[1]), ARGS[2], ARGS[3]
    gen = subprocess.Popen([gen_python, "-S", "-c",
        "import os, sys\\nsys.stdin.readline()\\ng = os.getppid\\nfor _ in range(%d): g()" % n],
        stdin=subprocess.PIPE)
    """
    )
    + EVENT_SETUP
    + textwrap.dedent(
        """
    consume = None
    if kind == "perf":
        b["events"].open_perf_buffer(on_record, page_cnt=256, lost_cb=on_lost)
        poll = b.perf_buffer_poll
        dropped = lambda: 0
    elif kind == "perf64":
        # a wakeup per 64 records of a CPU: the last few are read once the generator is done
        b["events"].open_perf_buffer(on_record, page_cnt=256, lost_cb=on_lost, wakeup_events=64)
        poll = b.perf_buffer_poll
        consume = b.perf_buffer_consume
        dropped = lambda: 0
    else:
        b["events"].open_ring_buffer(lambda ctx, data, size: on_record(0, data, size))
        poll = b.ring_buffer_poll
        table = b["dropped"]
        dropped = lambda: table[table.Key(0)].value
    t0 = t1 = time.perf_counter()
    gen.stdin.write(b"go\\n")
    gen.stdin.flush()
    deadline = t0 + 120
    # A perf buffer reports lost records only when a later record fits: losses at the very end may stay
    # untold. So the run also ends when the generator is done and its buffer is empty.
    while seen[0] + lost[0] + dropped() < n and time.perf_counter() < deadline:
        before = seen[0] + lost[0]
        done = gen.poll() is not None
        poll(100)
        if consume and done:
            consume()
        if seen[0] + lost[0] > before:
            t1 = time.perf_counter()
        elif done:
            break
    gen.wait()
    report(records=seen[0], lost=lost[0] + dropped(), seconds=t1 - t0)
    """
    )
)

# Figures 5 and 6 where the consumer sets the pace by construction: the generator makes its N calls
# into a buffer that holds them all, nobody reading; then the buffer is drained into the per-record
# callback, timed. (Streaming, a consumer that keeps up makes the kernel wake it for every record,
# which slows the generator; one that falls behind drops records and lets the generator run: a rate
# of records delivered then rewards dropping them.)
DRAIN_CHILD = (
    PRELUDE
    + textwrap.dedent(
        """
    import subprocess
    kind, n, gen_python, text, pages = ARGS[0], int(ARGS[1]), ARGS[2], ARGS[3], int(ARGS[4])
    gen = subprocess.Popen([gen_python, "-S", "-c",
        "import os, sys\\nos.sched_setaffinity(0, {0})\\nsys.stdin.readline()\\ng = os.getppid\\n"
        "for _ in range(%d): g()" % n], stdin=subprocess.PIPE)
    """
    )
    + EVENT_SETUP
    + textwrap.dedent(
        """
    if kind == "perf_drain":
        b["events"].open_perf_buffer(on_record, page_cnt=pages, lost_cb=on_lost)
        drain = b.perf_buffer_consume
        dropped = lambda: 0
    else:
        b["events"].open_ring_buffer(lambda ctx, data, size: on_record(0, data, size))
        drain = b.ring_buffer_consume
        table = b["dropped"]
        dropped = lambda: table[table.Key(0)].value
    gen.stdin.write(b"go\\n")
    gen.stdin.flush()
    gen.wait()
    t0 = time.perf_counter()
    while True:
        before = seen[0] + lost[0]
        drain()
        if seen[0] + lost[0] == before:
            break
    t1 = time.perf_counter()
    report(records=seen[0], lost=lost[0] + dropped(), seconds=t1 - t0)
    """
    )
)

# Figure 7: read a full hash map the ways a tool does. Filled (untimed) with one batch update.
MAP_CHILD = PRELUDE + textwrap.dedent(
    """
    n = int(ARGS[0])
    b = BPF(text=ARGS[1])
    t = b["counts"]
    t.items_update_batch((t.Key * n)(*range(n)), (t.Leaf * n)(*range(n)))
    import gc
    times = {}
    def timed(name, read):
        # each read from the same state: the previous result is gone and collected (untimed), so the
        # collector's walk over 100k objects another figure made is charged to neither
        gc.collect()
        t0 = time.perf_counter()
        out = read()
        times[name] = time.perf_counter() - t0
        return out
    def loop():
        count = 0
        for k in t:
            count += 1
        return count
    items = len(timed("items", t.items))
    keys = len(timed("keys", lambda: list(t.keys())))
    values = timed("values", lambda: list(t.values()))
    total = sum(v.value for v in values)
    values = len(values)
    count = timed("iter", loop)
    assert items == keys == values == count == n, (items, keys, values, count)
    assert total == n * (n - 1) // 2
    report(entries=n, **times)
    """
)

# Figure 8: start, compile (or load), attach, say "ready" and wait for one record; the harness then
# makes getppid calls until the record has arrived. The callback's CLOCK_MONOTONIC time is reported.
FIRST_EVENT_CHILD = PRELUDE + textwrap.dedent(
    """
    t0 = time.monotonic()
    b = BPF(text=ARGS[0])
    t1 = time.monotonic()
    target = b["target"]
    target[target.Key(0)] = target.Leaf(os.getppid())
    got = []
    def on_record(cpu, data, size):
        if not got and b["events"].event(data).pid == os.getppid():
            got.append(time.monotonic())
    b["events"].open_perf_buffer(on_record)
    print("ready", flush=True)
    while not got:
        b.perf_buffer_poll(100)
    report(event_s=got[0] - T_EXEC, bpf_s=t1 - t0, start_to_bpf_s=t1 - T_EXEC,
           cache_hit=getattr(b, "cache_hit", None))
    """
)


@dataclass
class Side:
    """How to start a child process of one side."""

    name: str
    python: str
    env: dict[str, str] = field(default_factory=dict)

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RBCC_CACHE_DIR")}
        env.update(self.env)
        env.update(extra or {})
        return env


def rbcc_side() -> Side:
    return Side("rbcc", sys.executable)


def bcc_side() -> Side:
    return Side("bcc", BCC_PYTHON, {"PYTHONPATH": str(BCCPATCH)})


class ChildFailed(RuntimeError):
    pass


def last_json(stdout: str, stderr: str, what: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ChildFailed(f"{what}: no result\n{stderr[-3000:]}")


def run(side: Side, script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> dict:
    """Run one child of `side` to its end and return its report."""
    t_exec = time.monotonic()
    out = subprocess.run(
        [side.python, "-c", script, repr(t_exec), side.name, *args],
        capture_output=True,
        text=True,
        env=side.environ(env),
        cwd="/",
        timeout=timeout,
    )
    if out.returncode != 0:
        raise ChildFailed(f"{side.name} child failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return last_json(out.stdout, out.stderr, side.name)


def run_first_event(side: Side, text: str, env: dict[str, str] | None = None, timeout: float = 120) -> dict:
    """Figure 8: start the child, and once it says "ready", trigger its tracepoint until it reports."""
    t_exec = time.monotonic()
    proc = subprocess.Popen(
        [side.python, "-c", FIRST_EVENT_CHILD, repr(t_exec), side.name, text],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=side.environ(env),
        cwd="/",
    )
    assert proc.stdout is not None
    deadline = t_exec + timeout
    lines: list[bytes] = []
    try:
        if proc.stdout.readline().strip() != b"ready":
            raise ChildFailed(f"{side.name} first-event child did not start:\n{proc.stderr.read().decode()[-3000:]}")
        while time.monotonic() < deadline:
            os.getppid()
            ready, _, _ = select.select([proc.stdout], [], [], 0.02)
            if ready:
                lines.append(proc.stdout.readline())
                break
        else:
            raise ChildFailed(f"{side.name} first-event child saw no event in {timeout} s")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise ChildFailed(f"{side.name} first-event child failed (exit {proc.returncode}):\n{err[-3000:]}")
    return last_json(b"".join(lines).decode(), err, side.name)


def bare_start(side: Side) -> float:
    """How long the side's interpreter (with its environment: bcc's imports bcc at start) runs `pass`."""
    t_exec = time.monotonic()
    subprocess.run([side.python, "-c", "pass"], env=side.environ(), cwd="/", check=True, timeout=60)
    return time.monotonic() - t_exec


def unique(text: str) -> str:
    """The same program with a fresh comment, so rbcc's object cache misses."""
    return f"{text}// {uuid.uuid4()}\n"


def bcc_status() -> str:
    """ "" when bcc compiles and attaches here, else why not (one line)."""
    if not Path(BCC_PYTHON).exists():
        return f"bcc is not set up: {BCC_PYTHON} does not exist"
    probe = PRELUDE + "BPF(text='TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }')\nreport()\n"
    try:
        run(bcc_side(), probe, timeout=120)
    except (ChildFailed, subprocess.TimeoutExpired) as e:
        lines = [line for line in str(e).splitlines()[1:] if line.strip()] or [str(e)]
        hint = "" if BCCPATCH.exists() else f" (run {ANCHOR} to set it up)"
        return f"bcc is not set up{hint}: import bcc or BPF() failed: {lines[-1].strip()[:160]}"
    return ""
