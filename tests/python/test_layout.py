"""The package's shape, read from its source (ast, nothing imported): no import cycle among rbcc's modules,
nothing the facade loads importing the facade back, ``__all__`` in every public module, and no file past
600 lines (past that a file holds two ideas).

Only module-level imports count toward a cycle: an import inside a function runs when it is called, after
every module has loaded (that is how ``rbcc.trace`` reaches the one-liners), and one under
``if TYPE_CHECKING:`` never runs. What the facade loads on first use counts toward the facade's own rule:
the one-liners once imported ``BPF`` from the package whose ``__getattr__`` imported them."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "python" / "rbcc"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = ("rbcc", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
# what ``from . import _core`` names is a module too (the compiled core, described by its stub)
KNOWN = set(MODULES) | {_module_name(p) for p in PACKAGE.rglob("*.pyi")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module loads: at its top level, or in a top-level if/try/with."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _module_level(block)
        elif isinstance(node, ast.With):
            yield from _module_level(node.body)


def _anywhere(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: the module-level ones and those inside functions."""
    yield from _module_level(body)
    for node in body:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for stmt in inner.body:
                    yield from _module_level([stmt])
                    yield from _anywhere([s for s in ast.iter_child_nodes(stmt) if isinstance(s, ast.stmt)])


def _imports(name: str, path: Path, in_functions: bool = False) -> set[str]:
    """The rbcc modules ``name`` imports when it loads (``in_functions``: or when it runs): ``from .x
    import y`` is rbcc's module ``.x.y`` if there is one (a submodule), else ``.x`` (a name defined there)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    body = ast.parse(path.read_text()).body
    for node in _anywhere(body) if in_functions else _module_level(body):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in KNOWN else source for a in node.names]
        found |= {t for t in targets if t in MODULES and t != name}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, as the modules along it (the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_no_import_cycle_among_rbcc_modules() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_nothing_the_facade_loads_imports_the_facade() -> None:
    # rbcc/__init__.py re-exports the package's names: what it loads, at once or on first use (rbcc.trace
    # loads the sessions), imports them from where they are defined, never back from the facade
    graph = {name: _imports(name, path, in_functions=True) for name, path in MODULES.items()}
    reached, todo = set(), ["rbcc"]
    while todo:
        for nxt in graph[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert sorted(name for name in reached - {"rbcc"} if "rbcc" in graph[name]) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _is_public(name: str) -> bool:
    # __main__ is the `python -m rbcc` entry, not something to import
    return not any(part.startswith("_") for part in name.split(".")[1:])


def _defines_all(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def test_every_public_module_says_what_it_exports() -> None:
    missing = sorted(name for name, path in MODULES.items() if _is_public(name) and not _defines_all(path))
    assert missing == [], "public modules without __all__"


def test_no_file_holds_two_ideas() -> None:
    long = {
        f"{name} ({n} lines)" for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == set(), f"split these by idea (at most {MAX_LINES} lines a file)"
