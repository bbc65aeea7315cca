"""The fake of the compiled core for the table tests that run without it (``fake_core``)."""

from __future__ import annotations

import sys

import pytest
from _fakes import FakeCore


@pytest.fixture
def fake_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables import the core where they use it (``from .. import _core`` in a function): that import
    finds FakeCore, whether the real core is loaded (the package's attribute) or not (sys.modules)."""
    package = sys.modules["rbcc"]
    monkeypatch.setattr(package, "_core", FakeCore, raising=False)
    monkeypatch.setitem(sys.modules, "rbcc._core", FakeCore)  # a class standing in for the module
