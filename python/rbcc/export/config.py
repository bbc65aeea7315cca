"""``rbcc export CONFIG.yaml``: the config file, read into Programs, every mistake a one-line
``ConfigError`` naming the file, the line and the field.

The file, in the spirit of ebpf_exporter's, holds bcc-dialect programs instead of compiled objects::

    listen: 127.0.0.1:9435          # optional; --listen wins
    max_series: 2000                # optional: label sets per metric unless a metric says
    programs:
      - name: syscalls
        text: |                     # or file: syscalls.c (next to this file)
          BPF_HASH(calls, u32, u64);
          TRACEPOINT_PROBE(raw_syscalls, sys_exit) { u32 nr = args->id; calls.increment(nr); return 0; }
        cflags: [-DFOO=1]
        attach:                     # functions not named for their probe
          - raw_tracepoint: sched_switch
            function: on_switch
        metrics:
          counters:
            - name: syscalls_total
              help: Syscalls by name
              map: calls
              labels:
                - {name: syscall, decoder: syscall}
          histograms:
            - {name: latency_seconds, map: dist, unit: usecs}

The YAML is read as nodes, not into dicts, so that each field keeps its line. Nothing in it runs: the
programs are compiled when the exporter starts, and a program's C errors are reported at their line
in this file (``text:``) or in its ``file:``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from .spec import ATTACH_KINDS, Attach, Counter, Gauge, Histogram, Label, Metric, Program, SpecError

__all__ = ["Config", "ConfigError", "Entry", "load_config"]


class ConfigError(ValueError):
    """A config file that cannot be run as written: ``FILE:LINE: FIELD: what is wrong``."""

    def __init__(self, path: str, line: int, field: str, message: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        self.path, self.line, self.field, self.message = path, line, field, message


@dataclass(frozen=True)
class Entry:
    """One program of the file, where it is, and where each of its metrics is."""

    program: Program
    field: str  # programs[0]
    metric_fields: tuple[str, ...]  # for Program.metrics[i]: programs[0].metrics.counters[1]
    text_line: int  # the line before the program's first (0 for a program from file:)
    text_indent: int  # how far a text: block is indented in the file
    text_file: str  # the program's file, for file:


@dataclass(frozen=True)
class Config:
    path: str
    listen: str | None
    max_series: int | None
    entries: tuple[Entry, ...]
    lines: dict[str, int]  # field → line

    def line_of(self, field: str) -> int:
        """The line of ``field``, or of the nearest enclosing field that has one."""
        while field:
            if field in self.lines:
                return self.lines[field]
            field = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", field)
        return 0

    def load_error(self, entry: Entry, field: str, error: BaseException) -> str:
        """One line for a program that failed to load: the file and line of ``field`` (a field of
        Program, as rbcc.export.field_of gives it; a C error's own line), the entry, the error."""
        message = str(error)
        if field and message.startswith(f"{field}: "):
            message = message[len(field) + 2 :]
        # the kernel's and clang's refusals keep their names; a metric that does not fit its map is said plainly
        kind = "" if isinstance(error, SpecError) else f"{type(error).__name__}: "
        if field.startswith("metrics[") and "]" in field:
            index, _, rest = field[len("metrics[") :].partition("]")
            if index.isdigit() and int(index) < len(entry.metric_fields):
                field = entry.metric_fields[int(index)] + rest
        full = f"{entry.field}.{field}" if field and not field.startswith(entry.field) else field or entry.field
        where = f"{self.path}:{self.line_of(full)}"
        # a C error at the program's line L, column C: there in its file (file:), or in this one (text:)
        c_error = re.match(r"^<bpf text>:(\d+):(\d+): (?:error: )?(.*)$", message)
        if c_error:
            line, column, message = int(c_error[1]), int(c_error[2]), c_error[3]
            if entry.text_file:
                where = f"{entry.text_file}:{line}:{column}"
            else:
                where = f"{self.path}:{entry.text_line + line}:{entry.text_indent + column}"
        return f"{where}: {full} (program {entry.program.name!r}): {kind}{message}"


_TOP = ("listen", "max_series", "programs")
_PROGRAM = ("name", "text", "file", "cflags", "attach", "metrics", "max_series")
_ATTACH_OPTIONS = ("pid", "sample_period", "sample_freq")
_METRICS = {"counters": Counter, "gauges": Gauge, "histograms": Histogram}
_Kinds = type | tuple[type, ...]
_SCALAR_FIELDS: dict[str, _Kinds] = {
    "name": str,
    "help": str,
    "map": str,
    "value": str,
    "scale": (int, float),
    "max_series": int,
}
_HISTOGRAM_FIELDS: dict[str, _Kinds] = {
    **{k: v for k, v in _SCALAR_FIELDS.items() if k != "scale"},
    "kind": str,
    "unit": str,
    "slot": str,
    "width": (int, float),
    "max_slot": int,
}
_LABEL_FIELDS: dict[str, type] = {
    "name": str,
    "field": str,
    "decoder": str,
    "stack_map": str,
    "pid_field": str,
    "byte_order": str,
    "values": dict,
}


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError("rbcc export reads config files with PyYAML: pip install 'rbcc[export]'") from None
    return yaml


def _what(node: Any) -> str:
    return {"MappingNode": "a mapping", "SequenceNode": "a list"}.get(type(node).__name__, "a single value")


class _Reader:
    def __init__(self, path: str) -> None:
        self.yaml = _yaml()
        self.path = path
        self.lines: dict[str, int] = {}
        self._constructor = self.yaml.SafeLoader("")

    def fail(self, node: Any, field: str, message: str) -> NoReturn:
        raise ConfigError(self.path, node.start_mark.line + 1, field, message)

    def mapping(self, node: Any, field: str, allowed: tuple[str, ...] | dict[str, Any]) -> dict[str, Any]:
        if not isinstance(node, self.yaml.MappingNode):
            self.fail(node, field, f"should be a mapping (name: value lines), not {_what(node)}")
        found: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, self.yaml.ScalarNode) else None
            inner = f"{field}.{key}" if field else str(key)
            if not isinstance(key, str) or key not in allowed:
                self.fail(key_node, inner, f"unknown field (known here: {', '.join(allowed)})")
            if key in found:
                self.fail(key_node, inner, "given twice")
            found[key] = value_node
            self.lines[inner] = value_node.start_mark.line + 1
        self.lines.setdefault(field, node.start_mark.line + 1)
        return found

    def sequence(self, node: Any, field: str) -> list[Any]:
        if not isinstance(node, self.yaml.SequenceNode):
            self.fail(node, field, f"should be a list, not {_what(node)}")
        for i, item in enumerate(node.value):
            self.lines[f"{field}[{i}]"] = item.start_mark.line + 1
        return list(node.value)

    def value(self, node: Any, field: str, kinds: _Kinds) -> Any:
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        names = " or ".join(
            {"str": "text", "int": "whole number", "float": "number", "dict": "mapping"}[k.__name__] for k in kinds
        )
        if dict in kinds and not isinstance(node, self.yaml.MappingNode):
            self.fail(node, field, f"should be a mapping, not {_what(node)}")
        if dict not in kinds and not isinstance(node, self.yaml.ScalarNode):
            self.fail(node, field, f"should be {names}, not {_what(node)}")
        value = self._constructor.construct_object(node, deep=True)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.fail(node, field, f"should be {names}, not {value!r}")
        return value

    def spec(self, node: Any, field: str, make: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """``make(**kwargs)``, a SpecError becoming a ConfigError at the line of its field."""
        try:
            return make(**kwargs)
        except SpecError as e:
            inner = f"{field}.{e.field}" if e.field else field
            line = self.lines.get(inner, node.start_mark.line + 1)
            raise ConfigError(self.path, line, inner, e.message) from None


def load_config(path: str) -> Config:
    """Read and check the config file at ``path`` (programs are not compiled here)."""
    reader = _Reader(path)
    yaml = reader.yaml
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, 0, "", f"cannot be read: {getattr(e, 'strerror', None) or e}") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ConfigError(path, mark.line + 1 if mark else 0, "", f"not YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, 0, "", f"not YAML: {e}") from None
    if root is None:
        raise ConfigError(path, 0, "", "is empty: it needs a list of programs")
    top = reader.mapping(root, "", _TOP)
    listen = reader.value(top["listen"], "listen", str) if "listen" in top else None
    max_series = reader.value(top["max_series"], "max_series", int) if "max_series" in top else None
    if max_series is not None and max_series < 1:
        reader.fail(top["max_series"], "max_series", f"{max_series} is not a positive number of label sets")
    if "programs" not in top:
        reader.fail(root, "programs", "missing: the file needs a list of programs")
    entries: list[Entry] = []
    names: dict[str, str] = {}  # metric name → its field
    for i, node in enumerate(reader.sequence(top["programs"], "programs")):
        entry = _program(reader, node, f"programs[{i}]", os.path.dirname(os.path.abspath(path)))
        if any(e.program.name == entry.program.name for e in entries):
            reader.fail(node, f"programs[{i}].name", f"a program named {entry.program.name!r} comes earlier")
        for metric, field in zip(entry.program.metrics, entry.metric_fields):
            if metric.name in names:
                line = reader.lines[f"{field}.name"]
                raise ConfigError(
                    path, line, f"{field}.name", f"metric {metric.name!r} is {names[metric.name]} already"
                )
            names[metric.name] = field
        entries.append(entry)
    if not entries:
        reader.fail(top["programs"], "programs", "the list is empty")
    return Config(path, listen, max_series, tuple(entries), reader.lines)


def _program(reader: _Reader, node: Any, field: str, base: str) -> Entry:
    fields = reader.mapping(node, field, _PROGRAM)
    if "name" not in fields:
        reader.fail(node, f"{field}.name", "missing: each program has a name")
    name = reader.value(fields["name"], f"{field}.name", str)
    if ("text" in fields) == ("file" in fields):
        reader.fail(node, f"{field}.text", "give the program's C as text: or as file:, one of them")
    text_line, text_indent, text_file = 0, 0, ""
    if "text" in fields:
        text = reader.value(fields["text"], f"{field}.text", str)
        text_node = fields["text"]
        # a block (|) starts on the next line, indented; a one-line value on its own
        text_line = text_node.start_mark.line + (1 if text_node.style in ("|", ">") else 0)
        if text_node.style in ("|", ">"):
            buffer = text_node.start_mark.buffer or ""  # PyYAML keeps the text read from a string
            first = buffer[text_node.start_mark.pointer :].split("\n", 2)[1:2]
            text_indent = len(first[0]) - len(first[0].lstrip(" ")) if first else 0
        else:
            text_indent = text_node.start_mark.column + (1 if text_node.style else 0)
    else:
        file = reader.value(fields["file"], f"{field}.file", str)
        text_file = os.path.join(base, file)
        try:
            with open(text_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reader.fail(
                fields["file"], f"{field}.file", f"cannot read {text_file}: {getattr(e, 'strerror', None) or e}"
            )
    cflags = []
    if "cflags" in fields:
        for i, flag in enumerate(reader.sequence(fields["cflags"], f"{field}.cflags")):
            cflags.append(reader.value(flag, f"{field}.cflags[{i}]", str))
    attach = []
    if "attach" in fields:
        for i, point in enumerate(reader.sequence(fields["attach"], f"{field}.attach")):
            attach.append(_attach(reader, point, f"{field}.attach[{i}]"))
    default_series = None
    if "max_series" in fields:
        default_series = reader.value(fields["max_series"], f"{field}.max_series", int)
        if default_series < 1:
            reader.fail(fields["max_series"], f"{field}.max_series", f"{default_series} is not a positive number")
    metrics: list[Metric] = []
    metric_fields: list[str] = []
    if "metrics" not in fields:
        reader.fail(node, f"{field}.metrics", "missing: which maps become which metrics")
    groups = reader.mapping(fields["metrics"], f"{field}.metrics", tuple(_METRICS))
    for group, items in groups.items():
        for i, item in enumerate(reader.sequence(items, f"{field}.metrics.{group}")):
            where = f"{field}.metrics.{group}[{i}]"
            metrics.append(_metric(reader, item, where, _METRICS[group], default_series))
            metric_fields.append(where)
    if not metrics:
        reader.fail(fields["metrics"], f"{field}.metrics", "no metrics: name at least one counter, gauge or histogram")
    program = reader.spec(
        node,
        field,
        Program,
        {"name": name, "text": text, "cflags": tuple(cflags), "attach": tuple(attach), "metrics": tuple(metrics)},
    )
    return Entry(program, field, tuple(metric_fields), text_line, text_indent, text_file)


def _attach(reader: _Reader, node: Any, field: str) -> Attach:
    fields = reader.mapping(node, field, (*ATTACH_KINDS, "function", *_ATTACH_OPTIONS))
    kinds = [k for k in ATTACH_KINDS if k in fields]
    if len(kinds) != 1:
        reader.fail(node, field, f"name one kind of attach point ({', '.join(ATTACH_KINDS)}), not {len(kinds)}")
    if "function" not in fields:
        reader.fail(node, f"{field}.function", "missing: which function of the program to attach")
    kind = kinds[0]
    options = {k: reader.value(fields[k], f"{field}.{k}", int) for k in _ATTACH_OPTIONS if k in fields}
    # the target's errors are at the line of the kind's key (tracepoint: ...)
    reader.lines[f"{field}.target"] = reader.lines[f"{field}.{kind}"]
    reader.lines[f"{field}.kind"] = reader.lines[f"{field}.{kind}"]
    return reader.spec(  # type: ignore[no-any-return]
        node,
        field,
        Attach,
        {
            "kind": kind,
            "target": reader.value(fields[kind], f"{field}.{kind}", str),
            "function": reader.value(fields["function"], f"{field}.function", str),
            "options": options,
        },
    )


def _metric(reader: _Reader, node: Any, field: str, make: type[Metric], default_series: int | None) -> Metric:
    allowed: dict[str, _Kinds] = {**(_HISTOGRAM_FIELDS if make is Histogram else _SCALAR_FIELDS), "labels": list}
    fields = reader.mapping(node, field, allowed)
    for required in ("name", "map"):
        if required not in fields:
            reader.fail(node, f"{field}.{required}", "missing")
    kwargs: dict[str, Any] = {}
    for key, value in fields.items():
        if key != "labels":
            kwargs[key] = reader.value(value, f"{field}.{key}", allowed[key])
    if "labels" in fields:
        labels = reader.sequence(fields["labels"], f"{field}.labels")
        kwargs["labels"] = tuple(_label(reader, label, f"{field}.labels[{i}]") for i, label in enumerate(labels))
    if "max_series" not in kwargs and default_series is not None:
        kwargs["max_series"] = default_series
    return reader.spec(node, field, make, kwargs)  # type: ignore[no-any-return]


def _label(reader: _Reader, node: Any, field: str) -> Label:
    fields = reader.mapping(node, field, _LABEL_FIELDS)
    if "name" not in fields:
        reader.fail(node, f"{field}.name", "missing: each label has a name")
    values = {key: reader.value(value, f"{field}.{key}", _LABEL_FIELDS[key]) for key, value in fields.items()}
    options = {k: v for k, v in values.items() if k not in ("name", "field", "decoder")}
    # a decoder's option errors name the option: its line is where the option is
    kwargs = {
        "name": values["name"],
        "field": values.get("field", ""),
        "decoder": values.get("decoder", "int"),
        "options": options,
    }
    return reader.spec(node, field, Label, kwargs)  # type: ignore[no-any-return]
