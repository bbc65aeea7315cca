"""What an exporter is told: which maps of a program become which metrics, with which labels, and how
the program attaches. Plain frozen dataclasses, checked as they are made (a ``SpecError`` names the
field), importing nothing beyond the standard library: the tools declare their metric sets with these
classes next to their C without paying for prometheus_client or OpenTelemetry.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from .decoders import DECODERS, check_options

__all__ = [
    "ATTACH_KINDS",
    "DEFAULT_MAX_SERIES",
    "UNITS",
    "Attach",
    "Counter",
    "Gauge",
    "Histogram",
    "Label",
    "Metric",
    "Program",
    "SpecError",
    "perf_event_numbers",
    "within",
]

# Enough for a disk, a syscall or a CPU breakdown on a large machine, well short of what hurts a
# Prometheus server when a key holds a PID or an address; each metric can raise or lower it.
DEFAULT_MAX_SERIES = 2000

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_FIELD = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*(\.[a-zA-Z_][a-zA-Z0-9_]*)*\Z")
# the exporter's own metrics (health) live under this prefix
RESERVED_PREFIX = "rbcc_export_"

# A program's unit → (the metric's base unit, the factor into it). Histograms in the base unit are what
# Prometheus and OpenTelemetry expect: seconds and bytes, whatever the program divided by.
UNITS: dict[str, tuple[str, float]] = {
    "": ("", 1.0),
    "nsecs": ("seconds", 1e-9),
    "usecs": ("seconds", 1e-6),
    "msecs": ("seconds", 1e-3),
    "secs": ("seconds", 1.0),
    "bytes": ("bytes", 1.0),
    "kbytes": ("bytes", 1024.0),
    "mbytes": ("bytes", 1024.0 * 1024),
}

ATTACH_KINDS = ("tracepoint", "raw_tracepoint", "kprobe", "kretprobe", "uprobe", "uretprobe", "perf_event")

# A label's decoder: a name from rbcc.export.decoders, or (Python API only) a function of the field's
# value returning the label's text, or None to leave the entry out.
DecoderRef = Union[str, Callable[[Any], Union[str, None]]]


class SpecError(ValueError):
    """A metric, label, attach point or program that cannot be exported as given; ``field`` is where
    (``labels[1].decoder``), for the config reader to name the line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _check_field(where: str, value: str, *, empty_ok: bool = True) -> None:
    if (value or not empty_ok) and not _FIELD.match(value):
        raise SpecError(where, f"{value!r} is not a C field name (a.b for a nested struct)")


@dataclass(frozen=True)
class Label:
    """A label from a key field: ``field`` is the key's field ("" for a key that is a plain number),
    dotted into nested structs; ``decoder`` turns its value into the label's text (see
    rbcc.export.decoders: comm, ksym, syscall, errno, ip, port, cgroup, disk, ...)."""

    name: str
    field: str = ""
    decoder: DecoderRef = "int"
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _LABEL_NAME.match(self.name) or self.name.startswith("__"):
            raise SpecError("name", f"{self.name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        _check_field("field", self.field)
        if isinstance(self.decoder, str):
            if self.decoder not in DECODERS:
                raise SpecError("decoder", f"unknown decoder {self.decoder!r} (known: {', '.join(sorted(DECODERS))})")
            problem = check_options(self.decoder, self.options)
            if problem:
                raise SpecError(problem[0], problem[1])
        elif not callable(self.decoder):
            raise SpecError("decoder", f"a decoder is a name or a function, not {type(self.decoder).__name__}")


@dataclass(frozen=True)
class _Metric:
    map: str
    name: str
    help: str = ""
    labels: tuple[Label, ...] = ()
    max_series: int | None = None

    metric_type: ClassVar[str] = ""

    def _check(self) -> None:
        if not isinstance(self.map, str) or not self.map:
            raise SpecError("map", "names the BPF map to read")
        if not isinstance(self.name, str) or not _METRIC_NAME.match(self.name):
            raise SpecError("name", f"{self.name!r} is not a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        if self.name.startswith(RESERVED_PREFIX):
            raise SpecError("name", f"{self.name!r}: names starting {RESERVED_PREFIX} are the exporter's own")
        object.__setattr__(self, "labels", tuple(self.labels))
        seen: set[str] = set()
        for i, label in enumerate(self.labels):
            if not isinstance(label, Label):
                raise SpecError(f"labels[{i}]", f"a Label, not {type(label).__name__}")
            if label.name in seen:
                raise SpecError(f"labels[{i}].name", f"label {label.name!r} twice")
            seen.add(label.name)
        if self.max_series is not None and (not isinstance(self.max_series, int) or self.max_series < 1):
            raise SpecError("max_series", f"{self.max_series!r} is not a positive number of label sets")

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)


@dataclass(frozen=True)
class _Scalar(_Metric):
    value: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        self._check()
        _check_field("value", self.value)
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale):
            raise SpecError("scale", f"{self.scale!r} is not a finite number")


@dataclass(frozen=True)
class Counter(_Scalar):
    """A counter per label set: the map's values (or their field ``value``), summed over CPUs and over
    the key fields that are no label, times ``scale``. Prometheus shows it as NAME_total."""

    metric_type: ClassVar[str] = "counter"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.name.endswith("_total"):  # prometheus_client adds it; said once, it stays once
            object.__setattr__(self, "name", self.name[: -len("_total")])


@dataclass(frozen=True)
class Gauge(_Scalar):
    """A gauge per label set, read as a counter is (a map that holds a current value, not a count)."""

    metric_type: ClassVar[str] = "gauge"


@dataclass(frozen=True)
class Histogram(_Metric):
    """A histogram per label set from bcc's histogram maps: the key is the slot (``BPF_HISTOGRAM(dist)``)
    or a struct whose field ``slot`` is (the other fields may be labels); each slot's count is its value.

    ``kind="log2"``: slot k counts values below 2**k (``bpf_log2l``), so its bucket's bound is 2**k units;
    ``"linear"``: slot k counts values in [k*width, (k+1)*width), bound (k+1)*width. ``unit`` is the
    program's (usecs, nsecs, msecs, secs, bytes, kbytes, mbytes, or "" for plain numbers); bounds are
    in its base unit (seconds, bytes). Slots past ``max_slot`` count in the +Inf bucket alone. bcc's
    maps keep no sum of the values, so the histogram has a count and buckets, and no sum."""

    kind: str = "log2"
    unit: str = ""
    slot: str = "slot"
    width: float = 1.0
    max_slot: int | None = None
    value: str = ""

    metric_type: ClassVar[str] = "histogram"

    def __post_init__(self) -> None:
        self._check()
        if self.kind not in ("log2", "linear"):
            raise SpecError("kind", f"{self.kind!r}: a histogram is log2 or linear")
        if self.unit not in UNITS:
            raise SpecError("unit", f"unknown unit {self.unit!r} (known: {', '.join(u for u in UNITS if u)})")
        _check_field("slot", self.slot, empty_ok=False)
        _check_field("value", self.value)
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not self.width > 0:
            raise SpecError("width", f"{self.width!r} is not a positive number")
        if self.max_slot is not None and (not isinstance(self.max_slot, int) or not 0 <= self.max_slot <= 127):
            raise SpecError("max_slot", f"{self.max_slot!r} is not a slot number (0..127)")
        if "le" in self.label_names:
            raise SpecError("labels", "'le' is the histogram's bucket label")

    @property
    def last_slot(self) -> int:
        """The last slot with a bucket of its own: 2**32 units (an hour in usecs) for log2, 100 widths."""
        if self.max_slot is not None:
            return self.max_slot
        return 32 if self.kind == "log2" else 99

    def bounds(self) -> list[float]:
        """Each bucket's upper bound, in the base unit, slot 0 first (+Inf is not among them)."""
        factor = UNITS[self.unit][1]
        if self.kind == "log2":
            return [float(2**k) * factor for k in range(self.last_slot + 1)]
        return [(k + 1) * self.width * factor for k in range(self.last_slot + 1)]


Metric = Union[Counter, Gauge, Histogram]


def perf_event_numbers(target: str) -> tuple[int, int]:
    """A perf event's ``type:config`` (``software:cpu_clock``, ``hardware:cpu_cycles``, or numbers) as
    perf_event_open's numbers."""
    from rbcc.perf import PerfHWConfig, PerfSWConfig, PerfType

    kind, _, config = target.partition(":")
    if kind.isdigit():
        ev_type = int(kind)
    elif kind.upper() in PerfType.__members__:
        ev_type = int(PerfType[kind.upper()])
    else:
        raise SpecError("target", f"unknown perf event type {kind!r} (hardware, software, or a number)")
    configs: dict[str, int] = {}
    if ev_type == PerfType.HARDWARE:
        configs = {name.lower(): int(value) for name, value in PerfHWConfig.__members__.items()}
    elif ev_type == PerfType.SOFTWARE:
        configs = {name.lower(): int(value) for name, value in PerfSWConfig.__members__.items()}
    if config.isdigit():
        return ev_type, int(config)
    if config.lower() in configs:
        return ev_type, configs[config.lower()]
    known = f"known: {', '.join(configs)}" if configs else "give its number"
    raise SpecError("target", f"unknown {kind} event {config!r} ({known})")


@dataclass(frozen=True)
class Attach:
    """One attach point of a program's function: ``kind`` is one of ATTACH_KINDS; ``target`` is
    ``category:event`` for a tracepoint, the event for a raw tracepoint, the kernel function for a
    kprobe, ``binary:symbol`` for a uprobe (``c:malloc``, ``/usr/bin/bash:readline``), ``type:config``
    for a perf event (``software:cpu_clock``, or numbers). ``options``: a uprobe's ``pid``, a perf
    event's ``sample_period`` or ``sample_freq``."""

    kind: str
    target: str
    function: str
    options: Mapping[str, int] = dataclasses.field(default_factory=dict)

    _OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "uprobe": ("pid",),
        "uretprobe": ("pid",),
        "perf_event": ("sample_period", "sample_freq"),
    }

    def __post_init__(self) -> None:
        if self.kind not in ATTACH_KINDS:
            raise SpecError("kind", f"unknown attach kind {self.kind!r} (known: {', '.join(ATTACH_KINDS)})")
        if not isinstance(self.target, str) or not self.target:
            raise SpecError("target", "names where to attach")
        if self.kind in ("tracepoint", "uprobe", "uretprobe", "perf_event") and ":" not in self.target:
            shape = {"tracepoint": "category:event", "perf_event": "type:config"}.get(self.kind, "binary:symbol")
            raise SpecError("target", f"{self.target!r}: a {self.kind} is named {shape}")
        if self.kind == "perf_event":
            perf_event_numbers(self.target)
        if not isinstance(self.function, str) or not _LABEL_NAME.match(self.function):
            raise SpecError("function", f"{self.function!r} is not a C function name")
        allowed = self._OPTIONS.get(self.kind, ())
        for key, value in self.options.items():
            if key not in allowed:
                raise SpecError(
                    key, f"a {self.kind} takes no option {key!r}" + (f" ({', '.join(allowed)})" if allowed else "")
                )
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(key, f"{value!r} is not a number")


@dataclass(frozen=True)
class Program:
    """A bcc-dialect program to compile, load and attach (functions named for their probe attach
    themselves, as in bcc; ``attach`` lists the others), and the metrics its maps become."""

    name: str
    text: str
    cflags: tuple[str, ...] = ()
    attach: tuple[Attach, ...] = ()
    metrics: tuple[Metric, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SpecError("name", "a program needs a name (it names the program in errors and health metrics)")
        if not isinstance(self.text, str) or not self.text.strip():
            raise SpecError("text", "the program has no text")
        object.__setattr__(self, "cflags", tuple(self.cflags))
        object.__setattr__(self, "attach", tuple(self.attach))
        object.__setattr__(self, "metrics", tuple(self.metrics))
        for i, flag in enumerate(self.cflags):
            if not isinstance(flag, str):
                raise SpecError(f"cflags[{i}]", f"{flag!r} is not a string")
        for i, metric in enumerate(self.metrics):
            if not isinstance(metric, (Counter, Gauge, Histogram)):
                raise SpecError(f"metrics[{i}]", f"a Counter, Gauge or Histogram, not {type(metric).__name__}")


def within(prefix: str, e: SpecError) -> SpecError:
    """``e`` as seen from the thing holding it: ``labels[1]`` + ``decoder`` → ``labels[1].decoder``."""
    inner = f"{prefix}.{e.field}" if e.field and not e.field.startswith("[") else f"{prefix}{e.field}"
    return SpecError(inner, e.message)
