"""rbcc's own tools, with bcc's names, options and output: ``rbcc tool NAME [ARGS...]``.

Each tool is a script in the checkout's top-level ``tools/`` (``sudo tools/execsnoop.py -T``) with
``main(argv) -> int``, a first docstring line that ``rbcc tool`` lists, and a pure function that builds
its BPF C (printed by ``--ebpf``). This package holds a symbolic link to each, ``NAME.py ->
../../../tools/NAME.py``: maturin puts a linked file's content in the wheel (it skips linked
directories, hence one link per tool) and an editable install imports them through the links, so
``rbcc tool NAME`` and ``python -m rbcc.tools.NAME`` run the same file either way. The toolkit the
tools share is ``rbcc._tools``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

__all__ = ["names", "run", "summary"]


def names() -> list[str]:
    """The tools, in alphabetical order."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def summary(name: str) -> str:
    """The one line ``rbcc tool`` shows for ``name``: its module docstring's first line."""
    doc = importlib.import_module(f"{__name__}.{name}").__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run(name: str, argv: Sequence[str]) -> int:
    """Run tool ``name`` with its arguments; a name that is no tool is a LookupError."""
    if name not in names():
        raise LookupError(name)
    main = importlib.import_module(f"{__name__}.{name}").main
    return int(main(list(argv)) or 0)
