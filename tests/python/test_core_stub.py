"""The typed surface of the core: every function the compiled module exports is declared in its stub
(python/rbcc/_core.pyi), so type checkers and editors see what really exists."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

core = pytest.importorskip("rbcc._core", reason="the core is not built (make install)")

STUB = Path(__file__).resolve().parents[2] / "python" / "rbcc" / "_core.pyi"


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    classes = {
        n.name: {m.name for m in n.body if isinstance(m, ast.FunctionDef)}
        for n in tree.body
        if isinstance(n, ast.ClassDef)
    }
    return functions, classes


def test_every_exported_function_and_class_is_in_the_stub() -> None:
    functions, classes = _stub_names()
    exported = {name for name in dir(core) if not name.startswith("_")}
    missing = sorted(
        name
        for name in exported
        if (inspect.isbuiltin(getattr(core, name)) and name not in functions)
        or (inspect.isclass(getattr(core, name)) and name not in classes)
    )
    assert missing == []


def test_every_public_method_of_an_exported_class_is_in_the_stub() -> None:
    _, classes = _stub_names()
    missing = []
    for name, methods in classes.items():
        cls = getattr(core, name, None)
        if cls is None:
            continue
        for attr in dir(cls):
            if not attr.startswith("_") and callable(getattr(cls, attr)) and attr not in methods:
                missing.append(f"{name}.{attr}")
    assert missing == []
