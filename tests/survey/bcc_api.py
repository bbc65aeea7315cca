#!/usr/bin/env python3
"""Every public name of bcc's Python package, read from its source with ast (nothing imported, so
libbcc need not load): each module's functions, classes, constants and re-exported names, each class's
methods and class attributes, and the attributes its ``__init__`` sets on the instance.

``python3 tests/survey/bcc_api.py [BCC_DIR]`` prints them one a line, ``module name kind``; the README's
"bcc API coverage" table lists the same names (tests/survey/test_bcc_api_coverage.py checks that).
"""

from __future__ import annotations

import ast
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

DEBIAN_BCC = Path("/usr/lib/python3/dist-packages/bcc")

# bcc's modules whose names scripts use; version.py holds only __version__, listed with the package
MODULES = (
    "__init__",
    "containers",
    "disassembler",
    "libbcc",
    "perf",
    "syscall",
    "table",
    "tcp",
    "usdt",
    "utils",
)

# private names scripts and bcc's own tests use all the same
USED_PRIVATE = {"bcc": {"_get_num_open_probes", "__version__"}}


class Name(NamedTuple):
    module: str  # bcc, bcc.table, ...
    name: str  # TableBase.items
    kind: str  # "module" (a module-level name), "class" (a class attribute), "instance" (set by __init__)


def _public(name: str, module: str) -> bool:
    return not name.startswith("_") or name in USED_PRIVATE.get(module, set())


def _targets(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _instance_attributes(cls: ast.ClassDef) -> list[str]:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    found: dict[str, None] = {}
    for node in ast.walk(init) if init else ():
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                found[node.attr] = None
    return list(found)


def _class_names(module: str, cls: ast.ClassDef, prefix: str) -> list[Name]:
    names: list[Name] = []
    class_level: set[str] = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            members = [node.name]
        else:
            members = _targets(node)
        for member in members:
            class_level.add(member)
            if not member.startswith("_"):
                names.append(Name(module, f"{prefix}{cls.name}.{member}", "class"))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            names.extend(_class_names(module, node, f"{prefix}{cls.name}."))
    for attr in _instance_attributes(cls):
        if not attr.startswith("_") and attr not in class_level:
            names.append(Name(module, f"{prefix}{cls.name}.{attr}", "instance"))
    return names


def module_names(path: Path, module: str, reexports: bool) -> list[Name]:
    """The public names of one module; with ``reexports``, also what it imports from bcc's other modules
    (the package's ``from bcc import USDT``)."""
    with warnings.catch_warnings():  # bcc's own source has escapes Python warns about
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        tree = ast.parse(path.read_text(), str(path))
    names: list[Name] = []
    for node in tree.body:
        defined: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            defined = _targets(node)
        elif isinstance(node, ast.If):  # bcc's module-level `if not os.path.exists(TRACEFS): TRACEFS = ...`
            defined = [t for stmt in node.body + node.orelse for t in _targets(stmt)]
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and reexports:
            defined = [alias.asname or alias.name for alias in node.names]
        for name in defined:
            if _public(name, module) and all(n.name != name for n in names):
                names.append(Name(module, name, "module"))
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            names.extend(_class_names(module, node, ""))
    return names


def bcc_names(root: Path = DEBIAN_BCC) -> list[Name]:
    names: list[Name] = []
    for stem in MODULES:
        module = "bcc" if stem == "__init__" else f"bcc.{stem}"
        names.extend(module_names(root / f"{stem}.py", module, reexports=stem == "__init__"))
    return names


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else DEBIAN_BCC
    if not (root / "__init__.py").is_file():
        print(f"no bcc package at {root} (Debian: apt-get install python3-bpfcc)", file=sys.stderr)
        return 1
    for name in bcc_names(root):
        print(f"{name.module} {name.name} {name.kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
