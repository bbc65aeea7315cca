"""rbcc's own tools, with bcc's names, options and output: ``rbcc tool NAME [ARGS...]``.

Each tool is one module here with ``main(argv) -> int``, a first docstring line that ``rbcc tool``
lists, and a pure function that builds its BPF C (printed by ``--ebpf``). The toolkit they share is in
``_common``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence


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
