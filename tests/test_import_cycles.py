"""No module of ``src/fasterpose`` imports another that imports it back, directly or through a chain.

Every import counts: module level, inside functions, ``importlib.import_module("fasterpose....")``
with a literal name, and registry strings naming a module and a factory
(``"fasterpose.models.lpn:build_lpn_backbone"``; the registry is then imported by name). Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
REGISTRY_STRING = re.compile(r"^(fasterpose(?:\.\w+)+):\w+$")  # "package.module:factory"


def module_names(src: Path) -> dict[str, Path]:
    """Dotted name -> file for every module under ``src/fasterpose``."""
    out = {}
    for path in sorted((src / "fasterpose").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _called_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The fasterpose modules that ``name`` imports anywhere in its file (see the module docstring)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()

    def add(target: str) -> None:
        while target and target not in modules:  # `from a.b import c` where c is not a module
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            for alias in node.names:
                full = f"{mod}.{alias.name}"
                add(full if full in modules else mod)
        elif isinstance(node, ast.Call) and _called_name(node) == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                add(arg.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = REGISTRY_STRING.match(node.value)
            if m:
                add(m.group(1))
    return {m for m in found if m.startswith("fasterpose")}


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    modules = module_names(src)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "fasterpose.deploy.predictor" in graph
    found = cycles(graph)
    detail = [
        " -> ".join(c) + "  (" + "; ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c) + ")" for c in found
    ]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_the_parser_sees_every_kind_of_import(tmp_path: Path) -> None:
    """A cycle hidden in a function, a relative import or a registry string is found."""
    pkg = tmp_path / "fasterpose"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from fasterpose.b import g\n")
    (pkg / "b.py").write_text("REGISTRY = {'x': 'fasterpose.sub.c:make'}\n")
    (pkg / "sub" / "c.py").write_text("from ..a import f\n")
    (pkg / "d.py").write_text("import importlib\nM = importlib.import_module('fasterpose.e')\n")
    (pkg / "e.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fasterpose import d\n")
    graph = import_graph(tmp_path)
    assert graph["fasterpose.a"] == {"fasterpose.b"} and graph["fasterpose.sub.c"] == {"fasterpose.a"}
    assert cycles(graph) == [["fasterpose.a", "fasterpose.b", "fasterpose.sub.c"]]  # d <-> e is type-only
