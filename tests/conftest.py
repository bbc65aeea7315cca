"""Shared pytest setup: import rbcc from the source tree (python/) without installing it."""

import sys
from pathlib import Path

_PYTHON_DIR = str(Path(__file__).resolve().parents[1] / "python")
if _PYTHON_DIR not in sys.path:
    sys.path.insert(0, _PYTHON_DIR)
