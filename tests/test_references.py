"""Every module, file or name the docs point at exists: docstrings and comments are the map of this
codebase, and a pointer to a module that moved away is a wrong turn for its reader.

Read: every docstring and comment of the project's Python files (not code strings: a test may name a
missing module on purpose), README.md, docs/*.md and pyproject.toml. A path such as
``bench/plan/config.py`` or ``results/recipes.md`` must exist; a dotted name such as ``bench.plan.recipe.LrSchedule`` must
resolve to a module and, past it, to a name defined at its top level.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("architectures", "backends", "bench", "datasets", "tests")
PATH = re.compile(r"(?<![\w/.-])((?:%s|docs|results)/[\w/.-]*\w\.(?:py|md|html))\b" % "|".join(PACKAGES))
DOTTED = re.compile(r"(?<![\w/.-])((?:%s)(?:\.[A-Za-z_]\w*)+)" % "|".join(PACKAGES))


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = ".".join(parts[:i])
        if module in MODULES:
            return i == len(parts) or parts[i] in top_level_names(MODULES[module])
    return False


def prose(path: Path) -> str:
    """Docstrings and comments of a Python file; the whole text of any other file."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return text
    out = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out.append(ast.get_docstring(node, clean=False) or "")
    return "\n".join(out)


def stale(text: str) -> list[str]:
    found = [m.group(1) for m in PATH.finditer(text) if not (ROOT / m.group(1)).exists()]
    files = (".md", ".py", ".html", ".json", ".txt", ".toml", ".yml")  # a file name, not a dotted name
    return found + [m.group(1) for m in DOTTED.finditer(text)
                    if not m.group(1).endswith(files) and not resolves(m.group(1))]


DOCS = [ROOT / "README.md", ROOT / "pyproject.toml", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("path", [p for p in DOCS if p.exists()] + sorted(MODULES.values()),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pointer_to_a_module_that_is_not_there(path):
    assert stale(prose(path)) == []


def test_the_check_finds_a_stale_pointer():
    assert stale("see ``bench/weights.py`` and ``bench.strategies.make_plan``") == ["bench/weights.py",
                                                                                   "bench.strategies.make_plan"]
    assert stale("``bench.plan.strategies.make_plan``, ``architectures.get_spec``, bench/plan/config.py") == []
    assert stale("``bench.plan.strategies.no_such_name``") == ["bench.plan.strategies.no_such_name"]
    assert stale("see docs/recipes.md, results/recipes.md and [x](architectures.md)") == []
    assert stale("see docs/nothing.md and results/nothing.md") == ["docs/nothing.md", "results/nothing.md"]
