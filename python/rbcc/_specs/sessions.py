"""Running parsed probe specs: trace's events and argdist's histograms and counts, as data.

:func:`trace` and :func:`argdist` are the notebook API (``rbcc.trace(...)``, ``rbcc.argdist(...)``):
they attach, collect for a while (or while a function runs), and return events as dicts and
histograms/counts as dicts instead of printing. The ``trace`` and ``argdist`` tools print what the
same sessions deliver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .._bpf import BPF
from .._probes.usdt import USDT
from ..errors import CompileError, ProbeSpecError
from .argdist import ArgdistSpec, parse_argdist
from .gen import (
    ArgdistProbe,
    TraceOptions,
    TraceProbe,
    argdist_program,
    spec_error,
    trace_program,
    tracepoint_fields,
)
from .trace import TraceSpec, parse_trace

Event = dict[str, Any]


def _usdt_context(library: str, probe: str, fn: str, pid: int | None) -> USDT:
    u = USDT(path=library, pid=pid) if pid is None else USDT(pid=pid, path=library)
    u.enable_probe(probe, fn)
    return u


def _compile(text: str, usdt: list[USDT], probes: Sequence[TraceProbe | ArgdistProbe]) -> BPF:
    """The program compiled and loaded; clang's complaint about a spec's expression or signature comes back
    pointing into the spec, not at a line of C the user never wrote."""
    try:
        return BPF(text=text, usdt_contexts=usdt)
    except CompileError as e:
        located = spec_error(str(e), probes)
        if located is None:
            raise
        raise located from e


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


class TraceSession:
    """trace's probes compiled, loaded and attached; each event goes to ``on_event`` as a dict."""

    def __init__(self, specs: Sequence[TraceSpec | str], opts: TraceOptions, *, page_cnt: int = 64) -> None:
        self.specs = [s if isinstance(s, TraceSpec) else parse_trace(s) for s in specs]
        if not self.specs:
            raise ProbeSpecError("trace needs at least one probe")
        self.opts = opts
        self.page_cnt = page_cnt
        self.text, self.probes = trace_program(self.specs, opts, tracepoint_fields)
        self.bpf: BPF | None = None
        self.first_ts = BPF.monotonic_time()
        self.first_ts_real = time.time()

    def load(self) -> BPF:
        """Compile, load and attach every probe (a kprobe here raises KernelFeatureError)."""
        pid = self.opts.tgid
        usdt = [
            _usdt_context(
                p.spec.point.library,
                f"{p.spec.point.provider}:{p.spec.point.function}" if p.spec.point.provider else p.spec.point.function,
                p.function,
                pid,
            )
            for p in self.probes
            if p.spec.point.kind == "u"
        ]
        b = _compile(self.text, usdt, self.probes)
        self.bpf = b
        for probe in self.probes:
            point = probe.spec.point
            if point.kind == "t":
                b.attach_tracepoint(tp=point.tracepoint, fn_name=probe.function)
            elif point.kind in "pr" and point.library:
                if point.kind == "r":
                    b.attach_uretprobe(name=point.library, sym=point.function, fn_name=probe.function, pid=pid or -1)
                else:
                    b.attach_uprobe(
                        name=point.library,
                        sym=point.function,
                        fn_name=probe.function,
                        pid=pid or -1,
                        sym_off=point.offset,
                    )
            elif point.kind == "r":
                b.attach_kretprobe(event=point.function, fn_name=probe.function)
            elif point.kind == "p":
                b.attach_kprobe(event=point.function, fn_name=probe.function, event_off=point.offset)
        return b

    def open(self, on_event: Callable[[Event], None]) -> None:
        b = self.bpf if self.bpf is not None else self.load()
        for probe in self.probes:
            b[probe.events].open_perf_buffer(
                lambda cpu, data, size, probe=probe: on_event(self.decode(probe, data)), page_cnt=self.page_cnt
            )

    def stack(self, probe: TraceProbe, stack_id: int, tgid: int) -> list[tuple[int, str]]:
        """(address, symbol) of each frame; a kernel stack when ``tgid`` is -1."""
        assert self.bpf is not None
        if stack_id < 0:
            return []
        frames = []
        for addr in self.bpf.get_table(probe.stacks).walk(stack_id):
            sym = self.bpf.sym(addr, tgid, show_module=True, show_offset=True)
            frames.append((addr, _text(sym)))
        return frames

    def decode(self, probe: TraceProbe, data: Any) -> Event:
        assert self.bpf is not None
        e = self.bpf[probe.events].event(data)
        values: list[Any] = []
        for i, conv in enumerate(probe.spec.conversions):
            v = getattr(e, f"v{i}")
            if conv.conv == "s":
                v = _text(v)
            elif conv.conv == "K":
                v = _text(self.bpf.ksym(v, show_offset=True))
            elif conv.conv == "U":
                v = _text(self.bpf.sym(v, e.tgid, show_module=True, show_offset=True))
            elif conv.conv == "c" and isinstance(v, bytes | bytearray):
                v = bytes(v[:1]).decode("latin-1")
            values.append(v)
        event: Event = {
            "probe": probe.spec.text,
            "function": probe.spec.display,
            "timestamp": 1e-9 * (e.timestamp_ns - self.first_ts),
            "time": self.first_ts_real + 1e-9 * (e.timestamp_ns - self.first_ts),
            "pid": e.tgid,
            "tid": e.pid,
            "uid": e.uid,
            "cpu": e.cpu,
            "comm": _text(e.comm),
            "values": values,
            "message": probe.spec.message(values),
        }
        if self.opts.kernel_stack:
            event["kernel_stack"] = self.stack(probe, e.kernel_stack_id, -1)
        if self.opts.user_stack:
            event["user_stack"] = self.stack(probe, e.user_stack_id, e.tgid)
        return event


def trace(
    *specs: str,
    duration: float | None = None,
    max_events: int | None = None,
    pid: int | None = None,
    tid: int | None = None,
    uid: int | None = None,
    during: Callable[[], object] | None = None,
    string_size: int = 80,
    kernel_stack: bool = False,
    user_stack: bool = False,
    include_self: bool = True,
) -> list[Event]:
    """Trace ``specs`` (trace's probe syntax) and return the events, each a dict: probe, function, pid,
    tid, uid, cpu, comm, timestamp (s since the start), time (UNIX), values, message (the format filled
    in), and kernel_stack/user_stack (lists of (address, symbol)) when asked for.

    Collects until ``max_events`` events or ``duration`` seconds, whichever comes first; with
    ``during``, calls it once the probes are attached and stops when it returns and its events are
    read (or at the limits). Without any of them it runs until Ctrl-C (KeyboardInterrupt), then returns.
    Unlike the trace tool, it keeps this process's own events unless ``include_self`` is False.
    """
    import os

    opts = TraceOptions(
        string_size=string_size,
        tgid=pid,
        tid=tid,
        uid=uid,
        exclude_tgid=None if include_self else os.getpid(),
        kernel_stack=kernel_stack,
        user_stack=user_stack,
    )
    session = TraceSession(specs, opts)
    events: list[Event] = []
    session.open(events.append)
    assert session.bpf is not None
    b = session.bpf
    start = time.monotonic()

    def done() -> bool:
        if max_events is not None and len(events) >= max_events:
            return True
        return duration is not None and time.monotonic() - start >= duration

    try:
        with b:
            if during is not None:
                during()
                # what it caused is in the buffers: read until they are empty
                while not done() and b.perf_buffer_poll(100):
                    pass
            else:
                while not done():
                    b.perf_buffer_poll(100)
    except KeyboardInterrupt:
        pass
    return events[:max_events] if max_events is not None else events


class ArgdistSession:
    """argdist's probes compiled, loaded and attached; :meth:`collect` reads (and clears) their tables."""

    def __init__(
        self,
        specs: Sequence[ArgdistSpec],
        *,
        string_size: int = 80,
        pid: int | None = None,
        tid: int | None = None,
        includes: Sequence[str] = (),
    ) -> None:
        if not specs:
            raise ProbeSpecError("argdist needs at least one probe (-H or -C)")
        self.specs = list(specs)
        self.pid = pid
        self.text, self.probes = argdist_program(
            self.specs, string_size=string_size, tgid=pid, tid=tid, includes=includes
        )
        self.bpf: BPF | None = None

    def load(self) -> BPF:
        usdt = [
            _usdt_context(p.spec.point.library, p.spec.point.function, p.function, self.pid)
            for p in self.probes
            if p.spec.point.kind == "u"
        ]
        b = _compile(self.text, usdt, self.probes)
        self.bpf = b
        pid = self.pid or -1
        for probe in self.probes:
            point = probe.spec.point
            if point.kind == "t":
                b.attach_tracepoint(tp=point.tracepoint, fn_name=probe.function)
            elif point.kind == "u":
                continue
            elif point.library:
                attach = b.attach_uretprobe if point.kind == "r" else b.attach_uprobe
                attach(name=point.library, sym=point.function, fn_name=probe.function, pid=pid)
                if probe.entry_function:
                    b.attach_uprobe(name=point.library, sym=point.function, fn_name=probe.entry_function, pid=pid)
            else:
                if point.kind == "r":
                    b.attach_kretprobe(event=point.function, fn_name=probe.function)
                else:
                    b.attach_kprobe(event=point.function, fn_name=probe.function)
                if probe.entry_function:
                    b.attach_kprobe(event=point.function, fn_name=probe.entry_function)
        return b

    def table(self, probe: ArgdistProbe) -> Any:
        assert self.bpf is not None
        return self.bpf.get_table(probe.table)

    def collect(self, probe: ArgdistProbe, clear: bool = True) -> dict[Any, int]:
        """A histogram as {lowest value of the power-of-2 bucket: count}, counts as {key: count} where the
        key is the value (one expression) or a tuple of values; default counts have key "total calls"
        (or the return value)."""
        data = self.table(probe)
        out: dict[Any, int] = {}
        if probe.spec.kind == "hist":
            for k, v in data.items():
                slot = int(getattr(k, "value", k))
                count = int(getattr(v, "value", v))
                if count:
                    out[0 if slot == 0 else 1 << (slot - 1)] = count
        else:
            for k, v in data.items():
                fields = [getattr(k, f"v{i}") for i in range(len(probe.spec.exprs))]
                values = tuple(_text(f.s) if hasattr(f, "s") else _value(f) for f in fields)
                key: Any = values[0] if len(values) == 1 else values
                if probe.spec.default_expr and probe.spec.point.kind != "r":
                    key = "total calls"
                out[key] = out.get(key, 0) + int(getattr(v, "value", v))
        if clear:
            data.clear()
        return out


def _value(v: Any) -> Any:
    if isinstance(v, bytes | bytearray):
        return _text(v)
    return getattr(v, "value", v)


def argdist(
    hist: Sequence[str] | str = (),
    count: Sequence[str] | str = (),
    *,
    duration: float | None = None,
    during: Callable[[], object] | None = None,
    pid: int | None = None,
    tid: int | None = None,
    string_size: int = 80,
) -> dict[str, dict[Any, int]]:
    """Collect argdist's histograms (``hist``, -H specs) and counts (``count``, -C specs) for ``duration``
    seconds, or while ``during()`` runs, or until Ctrl-C; returns {probe label or spec: data}: a
    histogram as {power-of-2 bucket's lowest value: count}, counts as {value (tuple if several): count}."""
    hist = [hist] if isinstance(hist, str) else list(hist)
    count = [count] if isinstance(count, str) else list(count)
    specs = [parse_argdist(s, "freq") for s in count] + [parse_argdist(s, "hist") for s in hist]
    session = ArgdistSession(specs, string_size=string_size, pid=pid, tid=tid)
    b = session.load()
    try:
        with b:
            try:
                if during is not None:
                    during()
                elif duration is not None:
                    time.sleep(duration)
                else:
                    while True:
                        time.sleep(1)
            except KeyboardInterrupt:
                pass
            return {p.spec.title: session.collect(p, clear=False) for p in session.probes}
    finally:
        b.cleanup()
