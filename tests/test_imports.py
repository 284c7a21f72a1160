"""Imports point one way: no cycle among dpa's modules, the core never names the engines, and
neither engine names the other (only `dpa.cli` wires them together).

Read from the source (`ast`), so imports under `if TYPE_CHECKING:` and inside functions count
too: a cycle that only the type checker follows is still two modules that cannot be
understood apart. `from a.b import c` is an edge to `a.b.c` when that is a module, else to
`a.b`; an import of `a.b.c` is an edge to `a.b.c` only, not to its parent package (as
import-linter and pylint count).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dpa", "retention", "exports")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import of `name` that names a module of ours."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]  # `import a.b.func`-like names: the module
            if target and target != name:
                yield target, node.lineno


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in GRAPH:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, edge = work.pop()
            if edge == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = [t for t, _ in GRAPH[node]]
            if edge < len(targets):
                work.append((node, edge + 1))
                target = targets[edge]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_the_walk_sees_the_packages_and_their_imports() -> None:
    assert {"dpa.register", "dpa.register.model", "dpa.due", "retention.sweeper"} <= set(MODULES)
    assert "dpa.register.model" in [t for t, _ in GRAPH["dpa.due"]]  # a TYPE_CHECKING import
    assert "dpa.due" in [t for t, _ in GRAPH["dpa.register.store"]]


def test_no_import_cycle() -> None:
    cycles = _cycles()
    described = [
        " -> ".join(
            f"{m} ({', '.join(f'{t}:{line}' for t, line in GRAPH[m] if t in c)})" for m in c
        )
        for c in cycles
    ]
    assert not cycles, "import cycles:\n" + "\n".join(described)


@pytest.mark.parametrize(
    "name", [m for m in MODULES if m.startswith("dpa") and not m.startswith("dpa.cli")]
)
def test_core_never_imports_the_engines(name: str) -> None:
    engines = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: imports {target}"
        for target, line in GRAPH[name]
        if target.split(".")[0] in ("retention", "exports")
    ]
    assert not engines, "\n".join(engines)


@pytest.mark.parametrize(
    "name", [m for m in MODULES if m.split(".")[0] in ("retention", "exports")]
)
def test_an_engine_never_imports_the_other(name: str) -> None:
    engine = name.split(".")[0]
    others = [
        f"{MODULES[name].relative_to(ROOT)}:{line}: imports {target}"
        for target, line in GRAPH[name]
        if target.split(".")[0] in ("retention", "exports") and target.split(".")[0] != engine
    ]
    assert not others, "\n".join(others)
