"""The import graph of the code, read from its source (``ast``: module-level and function-level
imports alike, since a deferred import still closes a circle once both run): no module imports
itself back through others, and rooms import one way only — ``catalog`` at the bottom, the sweep
on the run's config and records, the benchmarks on run pieces, never the sweep."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("catalog", "compacter", "lightning_modules", "experiments", "analysis")
ROOMS = ("experiments.run", "experiments.sweep", "experiments.bench")
# room -> the rooms it may import (besides itself); acyclic by construction
ALLOWED = {
    "catalog": set(),
    "compacter": {"catalog"},
    "lightning_modules": {"catalog", "compacter"},
    "experiments.run": {"catalog", "compacter", "lightning_modules"},
    "experiments.sweep": {"catalog", "experiments.run"},
    "experiments.bench": {"catalog", "compacter", "experiments.run"},
    "analysis": {"catalog"},
    "experiments": set(),  # the package itself: its rooms are the rooms above
}


def module_files(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages``, by dotted name (a package by its ``__init__``)."""
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``files`` it imports; ``from package import name`` is an import of
    ``package.name`` where that is a module, else of ``package``."""
    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in files.items():
        targets = set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets.update(known(f"{base}.{alias.name}") or known(base) for alias in node.names)
        graph[module] = {target for target in targets if target and target != module}
    return graph


def room_of(module: str) -> str:
    return next((room for room in ROOMS if module == room or module.startswith(room + ".")),
                module.split(".")[0])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one node, as one circle through it (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node), on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(_circle(graph, set(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no circle through {start}")


def test_no_module_imports_itself_back_through_others():
    found = cycles(import_graph(module_files()))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)


def test_rooms_import_one_way():
    graph = import_graph(module_files())
    wrong = sorted(f"{module} imports {target} ({room_of(module)} -> {room_of(target)})"
                   for module, targets in graph.items() for target in targets
                   if room_of(target) != room_of(module) and room_of(target) not in ALLOWED[room_of(module)])
    assert not wrong, "\n".join(wrong)
    rooms = {room_of(module) for module in graph}
    assert rooms == set(ALLOWED), rooms ^ set(ALLOWED)  # a new room states what it may import


@pytest.mark.parametrize("imports, circle", [
    # a function-level import closes a circle as surely as a module-level one
    ({"a/__init__.py": "", "a/x.py": "from a.y import f\n", "a/y.py": "def f():\n    from a import x\n"},
     ["a.x", "a.y", "a.x"]),
    ({"a/__init__.py": "", "a/x.py": "import a.y\n", "a/y.py": "from . import z\n", "a/z.py": "from .x import g\n"},
     ["a.x", "a.y", "a.z", "a.x"]),
])
def test_the_walk_finds_a_circle_at_any_depth_of_the_source(imports, circle, tmp_path):
    for name, text in imports.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cycles(import_graph(module_files(tmp_path, ("a",)))) == [circle]
