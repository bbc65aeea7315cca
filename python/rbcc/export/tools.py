"""``rbcc export --tool NAME``: the metric sets rbcc's own tools declare next to their C.

A tool that summarises into maps has ``export_metrics(args) -> Program``: the same C its ``bpf_text``
builds for those options, the attach points its ``run`` uses, and its maps as metrics. ``--tool
'biolatency -D'`` parses the options with the tool's own parser, so the metric set follows them (per
disk here).
"""

from __future__ import annotations

import importlib
import shlex
from types import ModuleType

from .spec import Program

__all__ = ["tool_names", "tool_program"]


def _module(name: str) -> ModuleType | None:
    from rbcc import tools

    if name not in tools.names():
        return None
    return importlib.import_module(f"rbcc.tools.{name}")


def tool_names() -> list[str]:
    """The tools with a metric set."""
    from rbcc import tools

    return [name for name in tools.names() if hasattr(_module(name), "export_metrics")]


def tool_program(spec: str) -> Program:
    """The Program of ``--tool SPEC``: a tool's name, then its options (``"runqlat -P"``). A name that
    is no tool with a metric set, or options its parser refuses, is a ValueError."""
    try:
        argv = shlex.split(spec)
    except ValueError as e:
        raise ValueError(f"--tool {spec!r}: {e}") from None
    if not argv:
        raise ValueError("--tool needs a tool's name")
    name, options = argv[0], argv[1:]
    module = _module(name)
    declare = getattr(module, "export_metrics", None)
    if declare is None:
        what = "has no metric set" if module is not None else "is no rbcc tool"
        raise ValueError(f"--tool {name}: {what} (tools with metric sets: {', '.join(tool_names())})")
    parser = module.build_parser()  # type: ignore[union-attr]
    parser.prog = f"rbcc export --tool '{name}'"
    try:
        args = parser.parse_args(options)
    except SystemExit:
        # the parser said what it refused, on stderr, with its usage
        raise ValueError(f"--tool {spec!r}: options refused by {name}'s parser (rbcc tool {name} -h)") from None
    program = declare(args)
    if not isinstance(program, Program):
        raise TypeError(f"{name}.export_metrics returned {type(program).__name__}, not a Program")
    return program
