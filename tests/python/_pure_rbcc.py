"""Import rbcc's pure-Python modules even when the compiled core (rbcc._core) is not built.

rbcc/__init__.py imports the extension; when that fails, an empty stand-in package
is registered so ``rbcc.table``, ``rbcc._tables.types`` and friends still import on their own.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parents[2] / "python" / "rbcc"


def load(name: str) -> Any:
    """The module ``rbcc.<name>``."""
    try:
        import rbcc  # noqa: F401
    except ImportError:
        package = types.ModuleType("rbcc")
        package.__path__ = [str(_PACKAGE_DIR)]
        sys.modules["rbcc"] = package
    return importlib.import_module(f"rbcc.{name}")
