"""The folder layout is the architecture: no import circle between modules, none between folders.

Every import counts, function-level ones included (``ast.walk``). A module is a node of the
module graph; its folder (the package it sits in, ``bench`` for ``bench/cli.py``,
``bench.core`` for ``bench/core/errors.py``) is a node of the folder graph. Importing
``a.b.c`` is an edge to that module only (its parents' ``__init__`` files hold docstrings).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("architectures", "backends", "bench", "datasets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _folder(module: str, modules: dict[str, Path]) -> str:
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0] or module


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports, anywhere in its body."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def folder_graph(graph: dict[str, set[str]], modules: dict[str, Path]) -> dict[str, set[str]]:
    folders: dict[str, set[str]] = {}
    for a, targets in graph.items():
        fa = _folder(a, modules)
        folders.setdefault(fa, set()).update(_folder(b, modules) for b in targets if _folder(b, modules) != fa)
    return folders


def test_no_circle_between_modules():
    assert cycles(import_graph(project_modules())) == []


def test_no_circle_between_folders():
    modules = project_modules()
    assert cycles(folder_graph(import_graph(modules), modules)) == []


def test_the_checks_find_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    modules = project_modules()
    graph = import_graph(modules)
    assert "bench.core.errors" in graph["architectures"]          # a function-level import is seen too
    assert "bench.execute.runner" in graph["bench.commands.internal"]
    graph["bench.core.errors"] = {"bench.cli"}                      # a planted back-import
    assert cycles(folder_graph(graph, modules))


@pytest.mark.parametrize("low,high", [("bench.core", "bench.measure"), ("bench.measure", "backends"),
                                      ("architectures", "backends"), ("backends", "bench.execute"),
                                      ("bench.report", "bench.commands"), ("datasets", "bench.plan")])
def test_lower_layers_never_import_upper_ones(low, high):
    modules = project_modules()
    folders = folder_graph(import_graph(modules), modules)
    reach, todo = set(), [low]
    while todo:
        for nxt in folders.get(todo.pop(), ()):
            if nxt not in reach:
                reach.add(nxt)
                todo.append(nxt)
    assert high not in reach, f"{low} reaches {high}"
