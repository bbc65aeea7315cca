"""The exporter: BPF objects and the metrics their maps become, collected on demand (a Prometheus scrape,
an OTLP push), with the exporter's own health alongside.

Every collection reads the maps then and there (one batch read per map), under one lock: two scrapes
at once take turns rather than doubling the work, and the cardinality guard sees one read at a time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import AttachError, BPFError
from .read import Family, MapCache, MetricReader, Outcome
from .spec import DEFAULT_MAX_SERIES, Attach, Metric, Program, SpecError, perf_event_numbers, within

__all__ = ["Exporter", "field_of", "parse_listen"]


class _Stoppable(Protocol):
    def close(self) -> None: ...


def field_of(error: BaseException) -> str:
    """Which part of a Program an error of :meth:`Exporter.load` came from (``text``, ``attach[1]``,
    ``metrics[0].labels[1].field``), for the config reader to name its line."""
    return str(getattr(error, "rbcc_field", ""))


def _located(error: Exception, where: str) -> Exception:
    """``error`` again, of its own type, its message prefixed with ``where`` and cut to its first line
    (clang's first error, not the pages after it); ``field_of`` tells ``where``."""
    if isinstance(error, SpecError):
        located: Exception = within(where, error) if where else error
        field = located.field if isinstance(located, SpecError) else where
    else:
        lines = str(error).strip().splitlines() or [type(error).__name__]
        first = next((line for line in lines if "error:" in line), lines[0]).strip()
        located = type(error)(f"{where}: {first}" if where else first)
        field = where
    located.rbcc_field = field  # type: ignore[attr-defined]
    return located


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9435`` for IPv6) → (host, port). The host must be named: listening on
    every interface is a choice (``0.0.0.0:9435``), never a default."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError(f"--listen {listen!r}: name the address and port, 127.0.0.1:9435 (0.0.0.0:9435 for all)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--listen {listen!r}: {port!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--listen {listen!r}: {number} is not a port number")
    return host, number


def _prog_fds() -> set[int]:
    """This process's BPF program fds (what /proc says of each)."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:bpf-prog":
                fds.add(int(name))
        except OSError:
            continue  # closed meanwhile (it was the listing's own fd)
    return fds


def _recursion_misses(fds: Sequence[int]) -> int:
    """How many times the kernel skipped these programs (another BPF program ran on the CPU at the time):
    events their maps never saw. /proc's fdinfo has the count for every program since Linux 5.12."""
    missed = 0
    for fd in fds:
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("recursion_misses:"):
                        missed += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return missed


def attach(bpf: Any, point: Attach) -> None:
    """Attach ``point.function`` of ``bpf`` where ``point`` says."""
    kind, target, fn = point.kind, point.target, point.function
    if kind == "tracepoint":
        bpf.attach_tracepoint(tp=target, fn_name=fn)
    elif kind == "raw_tracepoint":
        bpf.attach_raw_tracepoint(tp=target, fn_name=fn)
    elif kind == "kprobe":
        bpf.attach_kprobe(event=target, fn_name=fn)
    elif kind == "kretprobe":
        bpf.attach_kretprobe(event=target, fn_name=fn)
    elif kind in ("uprobe", "uretprobe"):
        binary, _, symbol = target.rpartition(":")
        getattr(bpf, f"attach_{kind}")(name=binary, sym=symbol, fn_name=fn, pid=point.options.get("pid", -1))
    else:
        ev_type, ev_config = perf_event_numbers(target)
        bpf.attach_perf_event(
            ev_type=ev_type,
            ev_config=ev_config,
            fn_name=fn,
            sample_period=point.options.get("sample_period", 0),
            sample_freq=point.options.get("sample_freq", 0),
        )


class _Source:
    """One BPF object and its metrics."""

    def __init__(self, program: str, bpf: Any, owned: bool, prog_fds: Sequence[int]) -> None:
        self.program = program
        self.bpf = bpf
        self.owned = owned
        self.prog_fds = tuple(prog_fds)
        self.readers: list[MetricReader] = []
        self.outcomes: dict[str, Outcome] = {}


class Exporter:
    """BPF objects whose maps are served as metrics.

    ``add(bpf, metrics, program=...)`` exports maps of a BPF object you made (and clean up);
    ``load(Program(...))`` compiles, attaches and exports one, cleaned up by ``close()``. Then
    ``serve("127.0.0.1:9435")`` answers Prometheus scrapes, ``push_otlp(url)`` pushes to an
    OpenTelemetry collector, ``collect()`` reads everything now. ``max_series`` is the default limit of
    label sets per metric (each metric may set its own)."""

    def __init__(self, *, max_series: int = DEFAULT_MAX_SERIES) -> None:
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
            raise ValueError(f"max_series {max_series!r} is not a positive number of label sets")
        self.max_series = max_series
        self._sources: list[_Source] = []
        self._names: dict[str, str] = {}  # metric name → the program exporting it
        self._lock = threading.Lock()
        self._services: list[_Stoppable] = []
        self._collections = 0
        self.push_errors = 0
        self._said: dict[tuple[str, str], str] = {}  # the last error said on stderr, per metric
        self._closed = False
        self._started_ns = time.time_ns()

    @property
    def programs(self) -> list[str]:
        return [s.program for s in self._sources]

    @property
    def metric_names(self) -> list[str]:
        return list(self._names)

    def add(self, bpf: Any, metrics: Sequence[Metric], *, program: str = "program") -> None:
        """Export ``metrics`` from the maps of ``bpf`` (a ``rbcc.BPF``). Each is read once here, so a
        map or field that is not there is a SpecError now (naming ``metrics[i]`` and the field), not at
        the first scrape."""
        self._add(bpf, metrics, program, owned=False, prog_fds=())

    def _add(self, bpf: Any, metrics: Sequence[Metric], program: str, owned: bool, prog_fds: Sequence[int]) -> None:
        if self._closed:
            raise ValueError("this exporter is closed")
        if any(s.program == program for s in self._sources):
            raise SpecError("name", f"a program named {program!r} is exported already")
        source = _Source(program, bpf, owned, prog_fds)
        names: dict[str, str] = {}
        cache: MapCache = {}
        for i, metric in enumerate(metrics):
            where = f"metrics[{i}]"
            if metric.name in self._names or metric.name in names:
                other = self._names.get(metric.name, program)
                raise _located(SpecError("name", f"metric {metric.name!r} is exported by {other!r} already"), where)
            names[metric.name] = program
            reader = MetricReader(program, bpf, metric, self.max_series)
            try:
                reader.check(cache)
            except SpecError as e:
                raise _located(e, where) from None
            except BPFError as e:
                raise _located(e, where) from e
            source.readers.append(reader)
        with self._lock:
            self._names.update(names)
            self._sources.append(source)

    def load(self, program: Program) -> Any:
        """Compile ``program``, attach it and export its metrics; returns its ``rbcc.BPF``. A failure is
        the error's own type (CompileError, AttachError, SpecError, ...) with a one-line message
        starting where it went wrong (``text``, ``attach[1]``, ``metrics[0].map``), the whole error as its
        ``__cause__`` (clang's diagnostics, the verifier's log); nothing is left loaded."""
        from rbcc import BPF

        before = _prog_fds()
        try:
            # quiet: a rejected program is one line naming its entry, its verifier log in __cause__
            bpf = BPF(text=program.text, cflags=list(program.cflags), quiet=True)
        except (BPFError, ValueError) as e:
            raise _located(e, "text" if isinstance(e, BPFError) else "cflags") from e
        try:
            for i, point in enumerate(program.attach):
                try:
                    attach(bpf, point)
                except (BPFError, ValueError, OSError) as e:
                    if not isinstance(e, BPFError):
                        e = AttachError(str(e))
                    raise _located(e, f"attach[{i}]") from e
            self._add(bpf, program.metrics, program.name, owned=True, prog_fds=sorted(_prog_fds() - before))
        except BaseException:
            bpf.cleanup()
            raise
        return bpf

    def collect(self) -> list[Family]:
        """Every metric as its map holds it now, then the exporter's health."""
        with self._lock:
            self._collections += 1
            cache: MapCache = {}
            families: list[Family] = []
            for source in self._sources:
                for reader in source.readers:
                    family, outcome = reader.read(cache)
                    source.outcomes[reader.metric.name] = outcome
                    self._say(source.program, reader.metric.name, outcome.error)
                    families.append(family)
            families.extend(self._health())
            return families

    def _say(self, program: str, metric: str, error: str) -> None:
        """A metric's read error on stderr once, when it starts (the health metrics count every one)."""
        key = (program, metric)
        if error and self._said.get(key) != error:
            print(f"rbcc export: {program}: {metric}: {error}", file=sys.stderr, flush=True)
        self._said[key] = error

    def _health(self) -> list[Family]:
        per_metric = ("program", "metric")
        loaded = Family("rbcc_export_programs_loaded", "gauge", "BPF programs loaded and exported", ())
        loaded.series[()] = float(len(self._sources))
        collections = Family("rbcc_export_collections", "counter", "Collections of the maps (scrapes, pushes)", ())
        collections.series[()] = float(self._collections)
        errors = Family("rbcc_export_scrape_errors", "counter", "Map reads that failed, per metric", per_metric)
        seconds = Family("rbcc_export_map_read_seconds", "gauge", "Time the latest read of a metric took", per_metric)
        series = Family("rbcc_export_series", "gauge", "Label sets a metric exported at its latest read", per_metric)
        dropped = Family(
            "rbcc_export_series_dropped",
            "gauge",
            "Label sets left out of a metric at its latest read by its max_series limit",
            per_metric,
        )
        lost = Family(
            "rbcc_export_lost_events",
            "counter",
            "Runs of a program's BPF functions the kernel skipped (recursion_misses): events its maps never saw",
            ("program",),
        )
        pushes = Family("rbcc_export_push_errors", "counter", "OTLP pushes that failed", ())
        pushes.series[()] = float(self.push_errors)
        for source in self._sources:
            for reader in source.readers:
                labels = (source.program, reader.metric.name)
                outcome = source.outcomes.get(reader.metric.name, Outcome())
                errors.series[labels] = float(reader.total_errors)
                seconds.series[labels] = outcome.seconds
                series.series[labels] = float(outcome.series)
                dropped.series[labels] = float(outcome.dropped)
            if source.owned:
                lost.series[(source.program,)] = float(_recursion_misses(source.prog_fds))
        return [loaded, collections, errors, seconds, series, dropped, lost, pushes]

    def serve(self, listen: str = "127.0.0.1:9435") -> tuple[str, int]:
        """Answer Prometheus scrapes at http://LISTEN/metrics from a thread; returns the address bound
        (port 0 picks a free one). Needs prometheus_client (``pip install rbcc[export]``)."""
        from .prom import serve

        host, port = parse_listen(listen)
        service, bound = serve(self, host, port)
        self._services.append(service)
        return bound

    def push_otlp(self, url: str, *, interval: float = 15.0, headers: dict[str, str] | None = None) -> None:
        """Push every metric to the OTLP/HTTP endpoint ``url`` (``http://collector:4318/v1/metrics``)
        every ``interval`` seconds from a thread, and once more at close(). Needs the OpenTelemetry SDK
        and its OTLP exporter (``pip install rbcc[export]``)."""
        from .otlp import Pusher

        if not interval > 0:
            raise ValueError(f"the OTLP interval {interval!r} is not a positive number of seconds")
        self._services.append(Pusher(self, url, interval, headers or {}))

    def started_ns(self) -> int:
        """When the exporter began counting (the start of every cumulative series, for OTLP)."""
        return self._started_ns

    def close(self) -> None:
        """Stop serving and pushing (a last push first), then detach and unload the programs load()
        loaded. Objects given to add() stay as they are: their owner cleans them up."""
        if self._closed:
            return
        self._closed = True
        for service in reversed(self._services):
            service.close()
        self._services.clear()
        with self._lock:
            for source in self._sources:
                if source.owned:
                    source.bpf.cleanup()
            self._sources.clear()
            self._names.clear()

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
